// The gate state machine: a gate opens, collects answers until it closes (approved, rejected, timed out, or the
// failure gate's retry / skip / abort), and reminds and escalates while it waits.
//
// Updates carry validators, so a refused answer (unknown or closed gate, approver not allowed, second vote, four
// eyes) is turned away with a message and never reaches history. Signals with the same names and payloads exist
// for clients that can only signal; a refused signal is recorded in the status instead.
import { ApplicationFailure, condition, log, setHandler } from '@temporalio/workflow';
import type { Duration, SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ApprovalGateSpec, FailurePolicy } from '../schemas/common';
import { describeIssues } from '../schemas/validate';
import type { Notifier } from './notifier';
import { ANSWERS, signersQuery, type Action, type AnswerMessage, type GateRecord, type GateState, type RunStatus, type Vote, type VoteResult } from './protocol';
import { REFUSALS } from './messages';
import { checkAnswerSignature, SignatureNeeded, SignatureRefused, type AnswerToVerify, type Signer } from './signatures/check';
import type { SignersInForce } from './signatures/inForce';
import { decisionOf } from './signatures/message';

export type ApprovalOutcome = { approved: true; by: string[] } | { approved: false; reason: string };

/** An answer the gate turns away; the message is for the person who answered, the type for their client. */
export class Refused extends Error {
  constructor(
    message: string,
    readonly type: (typeof REFUSALS)[keyof typeof REFUSALS] = REFUSALS.refused,
  ) {
    super(message);
  }
}

/** A checked answer, ready to apply. */
export interface Answer {
  gate: GateRecord;
  action: Action;
  by: string;
  comment?: string;
  /** Who signed a signed answer. */
  signer?: Signer;
}

/** Input schemas check the duration format, so the cast only satisfies the type of Temporal's parser. */
const ms = (d: string) => msToNumber(d as Duration);
const now = () => new Date().toISOString();
const approvalsOf = (gate: GateRecord) => gate.votes.filter((v) => v.action === 'approve').length;

export class Gates {
  constructor(
    private readonly status: RunStatus,
    private readonly ctx: { requestedBy?: string; failure: FailurePolicy; notifier: Notifier; publish: () => void; signers: SignersInForce },
  ) {}

  /** Answers arrive as updates (refusals go back to the sender) or signals (refusals go into the status). */
  installHandlers(): void {
    setHandler(signersQuery, () => this.ctx.signers.current ?? null);
    for (const message of Object.keys(ANSWERS) as AnswerMessage[]) {
      const { update, signal } = ANSWERS[message];
      setHandler(update as UpdateDefinition<VoteResult, [unknown]>, (raw: unknown) => this.apply(this.check(message, raw)), {
        validator: (raw: unknown) => {
          try {
            this.check(message, raw);
          } catch (err) {
            if (!(err instanceof Refused)) throw err;
            // The UI and CLI show a refusal to the person who answered: the reason, not workflow-code stack frames.
            const refusal = ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true });
            refusal.stack = '';
            throw refusal;
          }
        },
      });
      setHandler(signal as SignalDefinition<[unknown]>, (raw: unknown) => {
        try {
          this.apply(this.check(message, raw));
        } catch (err) {
          if (!(err instanceof Refused)) throw err;
          const r = (raw ?? {}) as { gate?: unknown; by?: unknown };
          const refusal = { message, gate: String(r.gate ?? ''), by: String(r.by ?? '?'), at: now(), reason: err.message };
          log.warn('gate answer refused', refusal);
          this.status.refused.push(refusal);
          this.ctx.publish();
        }
      });
    }
  }

  /**
   * Every rule an answer must pass, in one place (the update validator and the signal handler both call it):
   * parses the payload and throws Refused with the reason the person answering should read.
   */
  check(message: AnswerMessage, raw: unknown): Answer {
    const parsed = ANSWERS[message].schema.safeParse(raw);
    if (!parsed.success) throw new Refused(describeIssues(parsed.error).join('; '));
    const input = parsed.data as Omit<AnswerToVerify, 'decision'> & { reason?: string; action?: 'retry' | 'skip' | 'abort' };
    const action: Action = message === 'resolve' ? (input.action as Action) : message;
    const gate = this.gateFor(input.gate);
    const approval = action === 'approve' || action === 'reject';
    if (approval && gate.kind !== 'approval') throw new Refused(`gate "${gate.id}" is a failure gate: answer it with resolve (retry, skip or abort)`);
    if (!approval && gate.kind !== 'failure') throw new Refused(`gate "${gate.id}" is an approval gate: answer it with approve or reject`);
    if (!approval && gate.actions && !gate.actions.includes(action as 'retry')) throw new Refused(`gate "${gate.id}" allows only ${gate.actions.join(' or ')}: this step cannot be skipped`);
    const signer = this.signerOf(gate, { ...input, decision: decisionOf(message, input.action), comment: input.reason ?? input.comment });
    const restricted = gate.approvers.length > 0 || gate.approverGroups.length > 0;
    const allowed = gate.approvers.includes(input.by) || (input.group !== undefined && gate.approverGroups.includes(input.group));
    if (restricted && !allowed) {
      const who = [...gate.approvers, ...gate.approverGroups.map((g) => `members of Slack group ${g}`)];
      throw new Refused(`${input.by} may not answer gate "${gate.id}" (allowed: ${who.join(', ')})`);
    }
    if (gate.votes.some((v) => v.by === input.by)) throw new Refused(`${input.by} has already voted on gate "${gate.id}"`);
    if (gate.fourEyes && action === 'approve' && input.by === this.ctx.requestedBy) {
      throw new Refused(`${input.by} started this run; gate "${gate.id}" needs a second person (four eyes)`);
    }
    return { gate, action, by: input.by, comment: input.reason ?? input.comment, signer };
  }

  /** The signature checks (./signatures/check): who signed, or undefined for an unsigned answer where that is allowed. */
  private signerOf(gate: GateRecord, answer: AnswerToVerify): Signer | undefined {
    try {
      return checkAnswerSignature(answer, {
        signers: this.ctx.signers.current,
        gate,
        gates: this.status.gates.map((g) => g.id),
        requestedBy: this.ctx.requestedBy,
        now: Date.now(),
        nonceUsed: (nonce) => this.status.decisions.some((d) => d.nonce === nonce),
      });
    } catch (err) {
      if (err instanceof SignatureRefused) throw new Refused(err.message, err instanceof SignatureNeeded ? REFUSALS.signatureNeeded : REFUSALS.refused);
      throw err;
    }
  }

  /** The open gate an answer is for: the one it names, or the only one open. */
  private gateFor(id: string | undefined): GateRecord {
    const open = this.status.gates.filter((g) => g.state === 'open');
    let gate: GateRecord | undefined;
    if (id === undefined) {
      if (open.length === 0) throw new Refused('no gate is open');
      if (open.length > 1) throw new Refused(`several gates are open (${open.map((g) => g.id).join(', ')}): name one`);
      gate = open[0];
    } else {
      gate = [...this.status.gates].reverse().find((g) => g.id === id);
      if (!gate) throw new Refused(`no gate "${id}"${open.length ? ` (open: ${open.map((g) => g.id).join(', ')})` : ' (none is open)'}`);
    }
    if (gate.state !== 'open') {
      const last = gate.votes[gate.votes.length - 1];
      throw new Refused(`gate "${gate.id}" is closed: ${gate.state}${last ? ` by ${last.by} at ${last.at}` : ''}`);
    }
    return gate;
  }

  private apply({ gate, action, by, comment, signer }: Answer): VoteResult {
    const vote: Vote = { gate: gate.id, action, by, at: now(), ...(comment ? { comment } : {}), ...signer };
    gate.votes.push(vote);
    this.status.decisions.push(vote);
    const approvals = approvalsOf(gate);
    if (action === 'reject') this.close(gate, 'rejected');
    else if (action === 'approve') {
      if (approvals >= gate.quorum) this.close(gate, 'approved');
    } else this.close(gate, action);
    log.info('gate answered', { gate: gate.id, action, by });
    if (gate.state === 'open') this.ctx.notifier.refreshGate(gate);
    this.ctx.publish();
    return { gate: gate.id, state: gate.state, approvals, quorum: gate.quorum };
  }

  private close(gate: GateRecord, state: GateState): void {
    gate.state = state;
    gate.closedAt = now();
    this.ctx.notifier.refreshGate(gate);
    if (!this.status.gates.some((g) => g.state === 'open') && this.status.state === 'waiting') this.status.state = 'running';
  }

  /** Closes every open gate: the run is ending without their answer. */
  closeOpen(state: GateState): void {
    for (const gate of this.status.gates.filter((g) => g.state === 'open')) this.close(gate, state);
  }

  private open(gate: Omit<GateRecord, 'id' | 'state' | 'openedAt' | 'votes'> & { id: string }): GateRecord {
    const uses = this.status.gates.filter((g) => g.id === gate.id || g.id.startsWith(`${gate.id}-`)).length;
    const signed = this.ctx.signers.current?.signed === 'required';
    const record: GateRecord = { ...gate, id: uses ? `${gate.id}-${uses + 1}` : gate.id, ...(signed ? { signed } : {}), state: 'open', openedAt: now(), votes: [] };
    this.status.gates.push(record);
    this.status.state = 'waiting';
    this.ctx.publish();
    this.ctx.notifier.postGate(record);
    return record;
  }

  /** Waits for approval. Reminders and escalation fire on the way; the deadline rejects. */
  async approval(id: string, spec: ApprovalGateSpec, prompt: string, evidence?: string): Promise<ApprovalOutcome> {
    const keys = this.ctx.signers.ready();
    if (keys) await keys;
    const gate = this.open({
      id,
      kind: 'approval',
      prompt,
      evidence,
      approvers: [...(spec.approvers ?? [])],
      approverGroups: [...(spec.approverGroups ?? [])],
      channel: spec.channel,
      quorum: spec.quorum,
      fourEyes: spec.fourEyes,
      deadline: new Date(Date.now() + ms(spec.timeout)).toISOString(),
    });
    log.info('waiting for approval', { gate: gate.id, prompt, approvers: gate.approvers, quorum: gate.quorum, deadline: gate.deadline });
    const deadline = Date.parse(gate.deadline as string);
    const remindEvery = spec.remindEvery ? ms(spec.remindEvery) : undefined;
    let nextReminder = remindEvery ? Date.now() + remindEvery : Infinity;
    let escalateAt = spec.escalateAfter ? Date.now() + ms(spec.escalateAfter) : Infinity;
    while (gate.state === 'open') {
      const wake = Math.min(deadline, nextReminder, escalateAt);
      if (await condition(() => gate.state !== 'open', Math.max(wake - Date.now(), 1))) break;
      if (Date.now() >= deadline) {
        this.close(gate, 'timed-out');
        this.ctx.publish();
        break;
      }
      if (Date.now() >= escalateAt) {
        escalateAt = Infinity;
        if (gate.approvers.length) gate.approvers.push(...(spec.escalateTo ?? []).filter((p) => !gate.approvers.includes(p)));
        log.warn('approval escalated', { gate: gate.id, to: spec.escalateTo ?? [], approvers: gate.approvers });
        this.ctx.notifier.replyOnGate(gate, `Escalated: still waiting for ${gate.quorum - approvalsOf(gate)} approval(s)${spec.escalateTo?.length ? `; ${spec.escalateTo.join(', ')} may now approve too` : ''}.`);
        this.ctx.notifier.refreshGate(gate);
        this.ctx.publish();
      }
      if (remindEvery && Date.now() >= nextReminder) {
        nextReminder = Date.now() + remindEvery;
        log.info('approval still pending', { gate: gate.id, approvals: gate.votes.length, quorum: gate.quorum, deadline: gate.deadline });
        this.ctx.notifier.replyOnGate(gate, `Reminder: still waiting for approval (${approvalsOf(gate)}/${gate.quorum}), deadline ${gate.deadline}.`);
      }
    }
    if (gate.state === 'approved') return { approved: true, by: gate.votes.map((v) => v.by) };
    if (gate.state === 'timed-out') return { approved: false, reason: `gate "${gate.id}" timed out after ${spec.timeout} without approval` };
    const rejection = gate.votes.find((v) => v.action === 'reject');
    return { approved: false, reason: `gate "${gate.id}" rejected by ${rejection?.by}${rejection?.comment ? `: ${rejection.comment}` : ''}` };
  }

  /** Asks an operator what to do about a failed step; a timeout aborts. */
  async failure(step: string, error: string, skippable = true): Promise<'retry' | 'skip' | 'abort'> {
    const keys = this.ctx.signers.ready();
    if (keys) await keys;
    const policy = this.ctx.failure;
    const actions: ('retry' | 'skip' | 'abort')[] = skippable ? ['retry', 'skip', 'abort'] : ['retry', 'abort'];
    const gate = this.open({
      id: 'failure',
      kind: 'failure',
      actions,
      prompt: `step "${step}" failed: ${actions.join(', ')}?`,
      evidence: error,
      approvers: [...(policy.resolvers ?? [])],
      approverGroups: [],
      quorum: 1,
      fourEyes: false,
      deadline: policy.timeout ? new Date(Date.now() + ms(policy.timeout)).toISOString() : undefined,
    });
    log.warn('step failed: waiting for resolve', { gate: gate.id, step, error });
    const answered = policy.timeout ? await condition(() => gate.state !== 'open', ms(policy.timeout)) : (await condition(() => gate.state !== 'open'), true);
    if (!answered) {
      this.close(gate, 'timed-out');
      this.ctx.publish();
      return 'abort';
    }
    return gate.state as 'retry' | 'skip' | 'abort';
  }
}
