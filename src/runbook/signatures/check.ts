// The checks a signed gate answer must pass, shared by the update validator (in the workflow sandbox, so pure
// and deterministic) and `opsflow audit` (offline, from a run's history). Each refusal names the check that
// failed, so the person answering knows what to do.
import { canonicalMessage, SIGNATURE_NAMESPACE, type AnswerClaim, type Decision, type RunIdentity } from './message';
import { parsePublicKey, parseSshsig, verifySshsig, type PublicKey, type Sshsig } from './sshsig';

/**
 * Who may sign answers for a run: resolved from the inventory by an activity when the run starts, so the keys
 * are in the run's history and a later edit of the inventory does not change who could approve it.
 */
export interface GateSigners {
  /** required: unsigned answers are refused. optional: unsigned answers pass, signed ones are verified. */
  signed: 'required' | 'optional';
  /** People with keys (OpenSSH public key lines) or a Slack user id. */
  people: Record<string, { keys: string[]; slack?: string }>;
  /** The Slack bridge's keys: it vouches for people by their Slack user id. */
  slackBridge: string[];
  /**
   * An unsigned answer in the name of someone with keys is refused, signatures optional or not. Runs whose keys in
   * force were read before this rule existed lack it, and keep taking such answers (replay must see what they saw).
   */
  keyHoldersSign?: boolean;
}

/** The keys in force as the run's history holds them, with the run they were resolved for. */
export interface RunSigners extends GateSigners {
  /**
   * The run as it started: signatures are checked against this, so a replay (or a replay test under another
   * workflow id) checks exactly what the first execution checked.
   */
  run: RunIdentity;
}

/** The fields a signed answer carries beside the usual gate / by / comment. */
export interface SignedFields {
  signature?: string;
  time?: string;
  nonce?: string;
  /** Set by the Slack bridge: the Slack user who clicked. */
  slackUser?: string;
  /** The run the signer meant; a signature for another run is refused naming it. */
  runId?: string;
}

export interface AnswerToVerify extends SignedFields {
  /** The gate the answer names: a signed answer must name it, as its signature covers it. */
  gate?: string;
  decision: Decision;
  by: string;
  comment?: string;
  group?: string;
}

/** Who vouched for a verified answer: the key's fingerprint, and the Slack user when the bridge signed. */
export interface Signer {
  key: string;
  nonce: string;
  slackUser?: string;
}

/** A signature check that failed; the message says which one. */
export class SignatureRefused extends Error {}

/** An unsigned answer where only a signed one is taken: the remedy is to sign it. */
export class SignatureNeeded extends SignatureRefused {}

/** Signed answers older than this are refused: a captured signature is not good forever. */
export const MAX_AGE_MS = 10 * 60_000;
/** How far a signer's clock may be ahead of the run's, or behind the gate's opening. */
export const CLOCK_SKEW_MS = 2 * 60_000;

const DECISIONS: Decision[] = ['approve', 'reject', 'resolve:retry', 'resolve:skip', 'resolve:abort'];

function keysOf(lines: string[]): PublicKey[] {
  // The inventory checked every line when it loaded; a line that does not parse cannot vouch for anyone.
  return lines.flatMap((line) => {
    try {
      return [parsePublicKey(line)];
    } catch {
      return [];
    }
  });
}

function claimOf(a: AnswerToVerify, run: RunIdentity, overrides: Partial<AnswerClaim> = {}): AnswerClaim {
  return { ...run, gate: a.gate as string, decision: a.decision, by: a.by, comment: a.comment ?? '', group: a.group, slackUser: a.slackUser, time: a.time as string, nonce: a.nonce as string, ...overrides };
}

/**
 * Whether the signature covers this claim. Any failure to read it is a refusal, never an exception: a signal
 * handler that threw would fail the workflow task, so a malformed signature could wedge the run.
 */
function covers(sig: Sshsig, claim: AnswerClaim): boolean {
  try {
    return verifySshsig(sig, canonicalMessage(claim));
  } catch (err) {
    throw new SignatureRefused(`unreadable signature: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A signature that does not verify: say what it was made for, when another decision or gate of this run fits. */
function mismatch(sig: Sshsig, a: AnswerToVerify, run: RunIdentity, gates: string[]): string {
  for (const decision of DECISIONS) {
    if (decision !== a.decision && covers(sig, claimOf(a, run, { decision }))) return `the signature is for ${decision}, not ${a.decision}`;
  }
  for (const gate of gates) {
    if (gate !== a.gate && covers(sig, claimOf(a, run, { gate }))) return `the signature is for gate "${gate}", not "${a.gate}"`;
  }
  return `the signature does not match this answer (${a.decision} of gate "${a.gate}" by ${a.by} in run ${run.runId}): it was made for another run, or its by, comment, time or nonce were changed`;
}

/**
 * Checks that the signature is by one of `by`'s keys (or the Slack bridge's, for a Slack user mapped to `by`)
 * and covers exactly this answer in this run. `gates` are the run's other gate ids, to name a moved signature.
 */
export function verifyAnswer(a: AnswerToVerify, run: RunIdentity, signers: GateSigners, gates: string[] = []): Signer {
  if (!a.signature) throw new SignatureRefused('the answer is not signed');
  if (!a.gate) throw new SignatureRefused('a signed answer names its gate ("gate"), as its signature covers it');
  if (!a.time || !a.nonce) throw new SignatureRefused('a signed answer carries time and nonce too (as `opsflow sign` prints them)');
  if (a.runId !== undefined && a.runId !== run.runId) throw new SignatureRefused(`the signature is for another run (${a.runId}), not this one (${run.runId})`);
  let sig: Sshsig;
  try {
    sig = parseSshsig(a.signature);
  } catch (err) {
    throw new SignatureRefused(`unreadable signature: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (sig.namespace !== SIGNATURE_NAMESPACE) throw new SignatureRefused(`the signature is for namespace "${sig.namespace}", not "${SIGNATURE_NAMESPACE}" (sign with -n ${SIGNATURE_NAMESPACE})`);
  const fingerprint = sig.publicKey.fingerprint;
  if (a.slackUser !== undefined) {
    if (!keysOf(signers.slackBridge).some((k) => k.fingerprint === fingerprint)) throw new SignatureRefused(`key ${fingerprint} is not the Slack bridge's (bridges.slack.keys)`);
    const mapped = signers.people[a.by]?.slack;
    if (mapped !== a.slackUser) throw new SignatureRefused(`the Slack bridge vouches for Slack user ${a.slackUser}, who is not ${a.by} (people.${a.by}.slack is ${mapped ?? 'not set'})`);
  } else {
    if (a.group !== undefined) throw new SignatureRefused('only the Slack bridge vouches for Slack group membership: answer without group');
    const keys = keysOf(signers.people[a.by]?.keys ?? []);
    if (!keys.length) throw new SignatureRefused(`${a.by} has no keys in the inventory (people.${a.by}.keys)`);
    if (!keys.some((k) => k.fingerprint === fingerprint)) throw new SignatureRefused(`key ${fingerprint} is not one of ${a.by}'s keys (people.${a.by}.keys)`);
  }
  if (!covers(sig, claimOf(a, run))) throw new SignatureRefused(mismatch(sig, a, run, gates));
  return { key: fingerprint, nonce: a.nonce, ...(a.slackUser ? { slackUser: a.slackUser } : {}) };
}

/** Why a signature's time is not acceptable for a gate opened at `openedAt`, judged at `now`; undefined if it is. */
export function timeProblem(time: string, gate: { id: string; openedAt: string }, now: number): string | undefined {
  const at = Date.parse(time);
  if (Number.isNaN(at)) return `the signature's time "${time}" is not a date`;
  if (now - at > MAX_AGE_MS) return `the signature expired: signed at ${time}, more than ${MAX_AGE_MS / 60_000} minutes ago; sign again`;
  if (at - now > CLOCK_SKEW_MS) return `the signature is from the future (${time}): check your clock`;
  if (Date.parse(gate.openedAt) - at > CLOCK_SKEW_MS) return `the signature was made at ${time}, before gate "${gate.id}" opened at ${gate.openedAt}; sign again`;
  return undefined;
}

export interface SignatureContext {
  /** Undefined for runs that started before signed gates existed: they take unsigned answers only. */
  signers?: RunSigners;
  gate: { id: string; openedAt: string; fourEyes: boolean };
  /** The run's gate ids, to name the gate a moved signature was made for. */
  gates: string[];
  requestedBy?: string;
  /** Workflow time, in ms. */
  now: number;
  nonceUsed: (nonce: string) => boolean;
}

/** The two ways to sign this answer, for the refusal of an unsigned one. */
function howToSign(workflowId: string, gate: string, decision: Decision, by: string): string {
  const [message, action] = decision.split(':');
  const cli = `opsflow ${message} ${workflowId} --gate ${gate}${message === 'reject' ? ' --reason "..."' : ''}${action ? ` --action ${action}` : ''} --by ${by}`;
  return `Answer with \`${cli}\` (it signs with your SSH agent, or --key FILE), or for the Temporal UI paste the payload that \`opsflow sign ${workflowId} ${action ?? message} --gate ${gate} --by ${by}\` prints.`;
}

/**
 * The update validator's signature checks. Returns who signed, or undefined for an unsigned answer where
 * signatures are optional; throws SignatureRefused naming the check that failed.
 */
export function checkAnswerSignature(a: AnswerToVerify, ctx: SignatureContext): Signer | undefined {
  if (!a.signature) {
    if (ctx.signers?.signed === 'required') throw new SignatureNeeded(`gate "${ctx.gate.id}" takes signed answers only (gates.signed: required). ${howToSign(ctx.signers.run.workflowId, ctx.gate.id, a.decision, a.by)}`);
    // Who can prove who they are must: an unsigned answer could be anyone typing their name.
    if (ctx.signers?.keyHoldersSign && ctx.signers.people[a.by]?.keys.length) {
      throw new SignatureNeeded(`${a.by} has keys in force for this run (people.${a.by}.keys): answers in their name are signed. ${howToSign(ctx.signers.run.workflowId, ctx.gate.id, a.decision, a.by)}`);
    }
    return undefined;
  }
  if (!ctx.signers) throw new SignatureRefused('this run started before signed answers existed: answer it unsigned');
  const signer = verifyAnswer(a, ctx.signers.run, ctx.signers, ctx.gates);
  const late = timeProblem(a.time as string, ctx.gate, ctx.now);
  if (late) throw new SignatureRefused(late);
  if (ctx.nonceUsed(a.nonce as string)) throw new SignatureRefused(`duplicate vote: this signed answer (nonce ${a.nonce}) has already been counted`);
  const requesterKeys = ctx.requestedBy && ctx.requestedBy !== a.by ? keysOf(ctx.signers.people[ctx.requestedBy]?.keys ?? []) : [];
  if (ctx.gate.fourEyes && a.decision === 'approve' && requesterKeys.some((k) => k.fingerprint === signer.key)) {
    throw new SignatureRefused(`key ${signer.key} belongs to ${ctx.requestedBy}, who started this run; gate "${ctx.gate.id}" needs a second person (four eyes)`);
  }
  return signer;
}
