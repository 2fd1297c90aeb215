// What a signed gate answer signs: one canonical message naming the run, the gate, the decision and the person,
// so a signature cannot be moved to another run, gate or decision, nor its text edited. The signer (CLI, Slack
// bridge) and the verifier (update validator, audit) build it with this one function.
import { utf8ToBytes } from '@noble/hashes/utils';

/** The SSHSIG namespace of gate answers: `ssh-keygen -Y sign -n opsflow-gate`. */
export const SIGNATURE_NAMESPACE = 'opsflow-gate';

export type Decision = 'approve' | 'reject' | 'resolve:retry' | 'resolve:skip' | 'resolve:abort';

/** Which run an answer is for. */
export interface RunIdentity {
  /** The Temporal namespace. */
  namespace: string;
  workflowId: string;
  runId: string;
}

export interface AnswerClaim extends RunIdentity {
  gate: string;
  decision: Decision;
  by: string;
  /** The approve / resolve comment or the reject reason; empty when there is none. */
  comment: string;
  /** A Slack user group vouched for by the Slack bridge. */
  group?: string;
  /** The Slack user who clicked, when the Slack bridge signs. */
  slackUser?: string;
  /** When it was signed (ISO 8601). */
  time: string;
  /** Random, once per answer: the same signature twice is a duplicate vote. */
  nonce: string;
}

export function decisionOf(message: 'approve' | 'reject' | 'resolve', action?: 'retry' | 'skip' | 'abort'): Decision {
  return message === 'resolve' ? `resolve:${action ?? 'retry'}` : message;
}

/** JSON with a fixed key order and every key present: the same claim gives the same bytes everywhere. */
export function canonicalMessage(c: AnswerClaim): Uint8Array {
  return utf8ToBytes(
    JSON.stringify({
      opsflow: 'gate-answer/1',
      namespace: c.namespace,
      workflowId: c.workflowId,
      runId: c.runId,
      gate: c.gate,
      decision: c.decision,
      by: c.by,
      comment: c.comment,
      group: c.group ?? null,
      slackUser: c.slackUser ?? null,
      time: c.time,
      nonce: c.nonce,
    }),
  );
}
