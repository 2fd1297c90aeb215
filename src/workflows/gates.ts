// The gate machinery every opsflow workflow shares: approval gates (approve / reject), failure gates
// (resolve: retry / skip / abort), compensations, and the `status` query that shows all of it.
//
// Messages are defined once here. Updates carry validators, so a refused answer (unknown or closed gate,
// approver not allowed, second vote, four-eyes) is turned away with a message and never reaches history.
// Signals with the same names and payloads exist for clients that can only signal; a refused signal is
// recorded in the status instead.
import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration, SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { approveInput, rejectInput, resolveInput, type ApproveInput, type RejectInput, type ResolveInput } from '../schemas/gates';
import type { ApprovalGateSpec, FailurePolicy } from '../schemas/common';
import { describeIssues, INVALID_INPUT } from '../schemas/validate';
import type { Activities } from '../activities';
import type { Announcement, SlackPlace } from '../activities/notify';

// Notifying is best effort: Slack may be slow or rate limited (the client waits out Retry-After), so a post gets
// time and a few tries, and the run never waits for it (see Runbook.notify).
const notifier = proxyActivities<Activities>({ startToCloseTimeout: '2m', retry: { initialInterval: '2s', maximumAttempts: 3 } });

export type GateState = 'open' | 'approved' | 'rejected' | 'timed-out' | 'retry' | 'skip' | 'abort';
export type Action = 'approve' | 'reject' | 'retry' | 'skip' | 'abort';

export interface Vote {
  gate: string;
  action: Action;
  by: string;
  at: string;
  comment?: string;
}

export interface GateRecord {
  id: string;
  kind: 'approval' | 'failure';
  prompt: string;
  /** What the workflow gathered for the person deciding (a health check, the failing hosts). */
  evidence?: string;
  /** Empty, with no approverGroups either: anyone may answer. */
  approvers: string[];
  /** Slack user groups whose members may answer. */
  approverGroups: string[];
  /** Where the gate's Slack message goes, and where it went. */
  channel?: string;
  slack?: SlackPlace;
  quorum: number;
  fourEyes: boolean;
  /** Failure gates: the answers this step allows (a step whose result is needed cannot be skipped). */
  actions?: ('retry' | 'skip' | 'abort')[];
  state: GateState;
  openedAt: string;
  deadline?: string;
  closedAt?: string;
  votes: Vote[];
}

export interface StepRecord {
  id: number;
  name: string;
  host?: string;
  state: 'running' | 'succeeded' | 'failed' | 'skipped' | 'compensated' | 'compensation-failed';
  attempt: number;
  startedAt: string;
  endedAt?: string;
  error?: string;
}

export interface RunStatus {
  workflow: string;
  workflowId: string;
  runId: string;
  environment?: string;
  service?: string;
  release?: string;
  requestedBy?: string;
  dryRun: boolean;
  state: 'running' | 'waiting' | 'succeeded' | 'failed';
  phase: string;
  currentStep?: string;
  steps: StepRecord[];
  gates: GateRecord[];
  decisions: Vote[];
  /** Answers sent as signals that the gate turned away, with the reason. */
  refused: { message: string; gate: string; by: string; at: string; reason: string }[];
  error?: string;
}

export interface VoteResult {
  gate: string;
  state: GateState;
  approvals: number;
  quorum: number;
}

export const approveUpdate = defineUpdate<VoteResult, [ApproveInput]>('approve');
export const rejectUpdate = defineUpdate<VoteResult, [RejectInput]>('reject');
export const resolveUpdate = defineUpdate<VoteResult, [ResolveInput]>('resolve');
export const approveSignal = defineSignal<[ApproveInput]>('approve');
export const rejectSignal = defineSignal<[RejectInput]>('reject');
export const resolveSignal = defineSignal<[ResolveInput]>('resolve');
export const statusQuery = defineQuery<RunStatus>('status');

/** Failure types that no operator retry can fix: the run ends at once. */
const FATAL_TYPES = new Set([INVALID_INPUT, 'UnknownTarget', 'Embargoed']);

export const SKIPPED = Symbol('skipped');

export interface RunbookOptions {
  workflow: string;
  environment?: string;
  service?: string;
  release?: string;
  requestedBy?: string;
  dryRun: boolean;
  failure: FailurePolicy;
  /** Announce the run's start and end (success, failure, rollback) through the notifier. */
  announce?: boolean;
  /** Post gates and announce every phase to Slack (a channel, or the inventory's). */
  notify?: { channel?: string };
}

export interface StepOptions {
  host?: string;
  /** Overrides the run's failure policy for this step: `fail` undoes and ends the run without asking. */
  onFailure?: 'gate' | 'fail';
}

export type ApprovalOutcome = { approved: true; by: string[] } | { approved: false; reason: string };

class Refused extends Error {}

interface Answer {
  gate: GateRecord;
  action: Action;
  by: string;
  comment?: string;
}

const ANSWER_SCHEMAS = { approve: approveInput, reject: rejectInput, resolve: resolveInput };

/** Input schemas check the duration format, so the cast only satisfies the type of Temporal's parser. */
const ms = (d: string) => msToNumber(d as Duration);

function now(): string {
  return new Date().toISOString();
}

export function describeError(err: unknown): { message: string; type?: string } {
  let e: unknown = err;
  // An activity's failure wraps the ApplicationFailure the activity threw: report the innermost cause.
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  if (e instanceof ApplicationFailure) return { message: e.message, type: e.type ?? undefined };
  return { message: e instanceof Error ? e.message : String(e) };
}

export class Runbook {
  readonly status: RunStatus;
  private readonly compensations: { name: string; fn: () => Promise<void> }[] = [];
  private notifications: Promise<void> = Promise.resolve();
  private notifying = 0;
  private runThread?: SlackPlace;
  private nextStepId = 1;

  constructor(private readonly opts: RunbookOptions) {
    const info = workflowInfo();
    this.status = {
      workflow: opts.workflow,
      workflowId: info.workflowId,
      runId: info.runId,
      environment: opts.environment,
      service: opts.service,
      release: opts.release,
      requestedBy: opts.requestedBy,
      dryRun: opts.dryRun,
      state: 'running',
      phase: 'start',
      steps: [],
      gates: [],
      decisions: [],
      refused: [],
    };
    this.installHandlers();
    this.publish();
    if (opts.announce || opts.notify) {
      const what = [opts.environment, opts.service, opts.release].filter(Boolean).join(' ');
      this.announce('started', `${opts.workflow}${what ? ` ${what}` : ''} started${opts.requestedBy ? ` by ${opts.requestedBy}` : ''}${opts.dryRun ? ' (dry run)' : ''}`);
    }
  }

  // ---- answers -------------------------------------------------------------------------------------------

  private installHandlers(): void {
    setHandler(statusQuery, () => this.status);
    for (const [message, update, signal] of [
      ['approve', approveUpdate, approveSignal],
      ['reject', rejectUpdate, rejectSignal],
      ['resolve', resolveUpdate, resolveSignal],
    ] as const) {
      setHandler(update as UpdateDefinition<VoteResult, [unknown]>, (raw: unknown) => this.apply(this.answer(message, raw)), {
        validator: (raw: unknown) => {
          try {
            this.answer(message, raw);
          } catch (err) {
            if (!(err instanceof Refused)) throw err;
            // The UI and CLI show a refusal to the person who answered: the reason, not workflow-code stack frames.
            const refusal = ApplicationFailure.create({ message: err.message, type: 'Refused', nonRetryable: true });
            refusal.stack = '';
            throw refusal;
          }
        },
      });
      setHandler(signal as SignalDefinition<[unknown]>, (raw: unknown) => {
        try {
          this.apply(this.answer(message, raw));
        } catch (err) {
          if (!(err instanceof Refused)) throw err;
          const r = (raw ?? {}) as { gate?: unknown; by?: unknown };
          const refusal = { message, gate: String(r.gate ?? ''), by: String(r.by ?? '?'), at: now(), reason: err.message };
          log.warn('gate answer refused', refusal);
          this.status.refused.push(refusal);
          this.publish();
        }
      });
    }
  }

  /** Parses and checks an answer; throws Refused with the reason the person answering should read. */
  private answer(message: 'approve' | 'reject' | 'resolve', raw: unknown): Answer {
    const parsed = ANSWER_SCHEMAS[message].safeParse(raw);
    if (!parsed.success) throw new Refused(describeIssues(parsed.error).join('; '));
    const input = parsed.data as { gate?: string; by: string; group?: string; comment?: string; reason?: string; action?: 'retry' | 'skip' | 'abort' };
    const action: Action = message === 'resolve' ? (input.action as Action) : message;
    return { gate: this.check(action, input), action, by: input.by, comment: input.reason ?? input.comment };
  }

  private check(action: Action, input: { gate?: string; by: string; group?: string }): GateRecord {
    const open = this.status.gates.filter((g) => g.state === 'open');
    let gate: GateRecord | undefined;
    if (input.gate === undefined) {
      if (open.length === 0) throw new Refused('no gate is open');
      if (open.length > 1) throw new Refused(`several gates are open (${open.map((g) => g.id).join(', ')}): name one`);
      gate = open[0];
    } else {
      gate = [...this.status.gates].reverse().find((g) => g.id === input.gate);
      if (!gate) throw new Refused(`no gate "${input.gate}"${open.length ? ` (open: ${open.map((g) => g.id).join(', ')})` : ' (none is open)'}`);
    }
    if (gate.state !== 'open') {
      const last = gate.votes[gate.votes.length - 1];
      throw new Refused(`gate "${gate.id}" is closed: ${gate.state}${last ? ` by ${last.by} at ${last.at}` : ''}`);
    }
    const approval = action === 'approve' || action === 'reject';
    if (approval && gate.kind !== 'approval') throw new Refused(`gate "${gate.id}" is a failure gate: answer it with resolve (retry, skip or abort)`);
    if (!approval && gate.kind !== 'failure') throw new Refused(`gate "${gate.id}" is an approval gate: answer it with approve or reject`);
    if (!approval && gate.actions && !gate.actions.includes(action as 'retry')) throw new Refused(`gate "${gate.id}" allows only ${gate.actions.join(' or ')}: this step cannot be skipped`);
    const restricted = gate.approvers.length > 0 || gate.approverGroups.length > 0;
    const allowed = gate.approvers.includes(input.by) || (input.group !== undefined && gate.approverGroups.includes(input.group));
    if (restricted && !allowed) {
      const who = [...gate.approvers, ...gate.approverGroups.map((g) => `members of Slack group ${g}`)];
      throw new Refused(`${input.by} may not answer gate "${gate.id}" (allowed: ${who.join(', ')})`);
    }
    if (gate.votes.some((v) => v.by === input.by)) throw new Refused(`${input.by} has already voted on gate "${gate.id}"`);
    if (gate.fourEyes && action === 'approve' && input.by === this.opts.requestedBy) {
      throw new Refused(`${input.by} started this run; gate "${gate.id}" needs a second person (four eyes)`);
    }
    return gate;
  }

  private apply({ gate, action, by, comment }: Answer): VoteResult {
    const vote: Vote = { gate: gate.id, action, by, at: now(), ...(comment ? { comment } : {}) };
    gate.votes.push(vote);
    this.status.decisions.push(vote);
    const approvals = gate.votes.filter((v) => v.action === 'approve').length;
    if (action === 'reject') this.close(gate, 'rejected');
    else if (action === 'approve') {
      if (approvals >= gate.quorum) this.close(gate, 'approved');
    } else this.close(gate, action);
    log.info('gate answered', { gate: gate.id, action, by });
    if (gate.state === 'open') this.refreshGateMessage(gate);
    this.publish();
    return { gate: gate.id, state: gate.state, approvals, quorum: gate.quorum };
  }

  private close(gate: GateRecord, state: GateState): void {
    gate.state = state;
    gate.closedAt = now();
    this.refreshGateMessage(gate);
    if (!this.status.gates.some((g) => g.state === 'open') && this.status.state === 'waiting') this.status.state = 'running';
  }

  private openGate(gate: Omit<GateRecord, 'id' | 'state' | 'openedAt' | 'votes'> & { id: string }): GateRecord {
    const uses = this.status.gates.filter((g) => g.id === gate.id || g.id.startsWith(`${gate.id}-`)).length;
    const record: GateRecord = { ...gate, id: uses ? `${gate.id}-${uses + 1}` : gate.id, state: 'open', openedAt: now(), votes: [] };
    this.status.gates.push(record);
    this.status.state = 'waiting';
    this.publish();
    if (this.postsGates(record)) {
      this.notify(`post gate ${record.id}`, async () => {
        record.slack = (await notifier.postGate({ run: this.runRef(), gate: record, channel: record.channel ?? this.opts.notify?.channel, thread: this.runThread })) ?? undefined;
        // Answers that came in while the post was queued are shown at once.
        if (record.slack && (record.votes.length || record.state !== 'open')) await notifier.updateGate({ run: this.runRef(), gate: record, place: record.slack });
      });
    }
    return record;
  }

  private postsGates(gate: GateRecord): boolean {
    return gate.channel !== undefined || this.opts.notify !== undefined;
  }

  /** Shows votes and the decision on the gate's Slack message; a closed gate loses its buttons. */
  private refreshGateMessage(gate: GateRecord): void {
    if (!this.postsGates(gate)) return;
    this.notify(`update gate ${gate.id}`, async () => {
      if (gate.slack) await notifier.updateGate({ run: this.runRef(), gate, place: gate.slack });
    });
  }

  private gateReply(gate: GateRecord, text: string): void {
    if (!this.postsGates(gate)) return;
    this.notify(`reply on gate ${gate.id}`, async () => {
      if (gate.slack) await notifier.gateReply({ place: gate.slack, text });
    });
  }

  // ---- gates ---------------------------------------------------------------------------------------------

  /**
   * Waits for approval. Reminders and escalation fire on the way; the deadline rejects. The caller decides
   * what a rejection undoes.
   */
  async approval(id: string, spec: ApprovalGateSpec, prompt: string, evidence?: string): Promise<ApprovalOutcome> {
    const gate = this.openGate({
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
        this.publish();
        break;
      }
      if (Date.now() >= escalateAt) {
        escalateAt = Infinity;
        if (gate.approvers.length) gate.approvers.push(...(spec.escalateTo ?? []).filter((p) => !gate.approvers.includes(p)));
        log.warn('approval escalated', { gate: gate.id, to: spec.escalateTo ?? [], approvers: gate.approvers });
        this.gateReply(gate, `Escalated: still waiting for ${gate.quorum - gate.votes.filter((v) => v.action === 'approve').length} approval(s)${spec.escalateTo?.length ? `; ${spec.escalateTo.join(', ')} may now approve too` : ''}.`);
        this.refreshGateMessage(gate);
        this.publish();
      }
      if (remindEvery && Date.now() >= nextReminder) {
        nextReminder = Date.now() + remindEvery;
        log.info('approval still pending', { gate: gate.id, approvals: gate.votes.length, quorum: gate.quorum, deadline: gate.deadline });
        this.gateReply(gate, `Reminder: still waiting for approval (${gate.votes.filter((v) => v.action === 'approve').length}/${gate.quorum}), deadline ${gate.deadline}.`);
      }
    }
    if (gate.state === 'approved') return { approved: true, by: gate.votes.map((v) => v.by) };
    if (gate.state === 'timed-out') return { approved: false, reason: `gate "${gate.id}" timed out after ${spec.timeout} without approval` };
    const rejection = gate.votes.find((v) => v.action === 'reject');
    return { approved: false, reason: `gate "${gate.id}" rejected by ${rejection?.by}${rejection?.comment ? `: ${rejection.comment}` : ''}` };
  }

  /** Asks an operator what to do about a failed step; a timeout aborts. */
  async failureGate(step: string, error: string, skippable = true): Promise<'retry' | 'skip' | 'abort'> {
    const policy = this.opts.failure;
    const actions: ('retry' | 'skip' | 'abort')[] = skippable ? ['retry', 'skip', 'abort'] : ['retry', 'abort'];
    const gate = this.openGate({
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
      this.publish();
      return 'abort';
    }
    return gate.state as 'retry' | 'skip' | 'abort';
  }

  // ---- steps ---------------------------------------------------------------------------------------------

  phase(name: string): void {
    this.status.phase = name;
    log.info('phase', { phase: name });
    if (this.opts.notify) this.announce('phase', `phase: ${name}`);
    this.publish();
  }

  /**
   * Runs a step; on failure (after the activity's own retries) the failure policy decides what follows. A step
   * marked `required` offers only retry or abort, and so always returns its result.
   */
  async step<T>(name: string, fn: (attempt: number) => Promise<T>, opts: StepOptions & { required: true }): Promise<T>;
  async step<T>(name: string, fn: (attempt: number) => Promise<T>, opts?: StepOptions & { required?: false }): Promise<T | typeof SKIPPED>;
  async step<T>(name: string, fn: (attempt: number) => Promise<T>, opts: StepOptions & { required?: boolean } = {}): Promise<T | typeof SKIPPED> {
    for (let attempt = 1; ; attempt++) {
      const step = this.beginStep(name, attempt, opts.host);
      try {
        const result = await fn(attempt);
        this.endStep(step, 'succeeded');
        return result;
      } catch (err) {
        const { message, type } = describeError(err);
        this.endStep(step, 'failed', message);
        // A cancelled run is not a failed step: no operator is asked, the cancellation goes on up.
        if (isCancellation(err)) throw err;
        if ((type && FATAL_TYPES.has(type)) || (opts.onFailure ?? this.opts.failure.onFailure) === 'fail') return this.fail(message, type ?? 'StepFailed', err);
        const action = await this.failureGate(name, message, !opts.required);
        if (action === 'skip') {
          step.state = 'skipped';
          this.publish();
          return SKIPPED;
        }
        if (action === 'abort') return this.fail(`aborted after "${name}" failed: ${message}`, 'Aborted');
      }
    }
  }

  /** Records a sub-step of a larger one: no gate of its own, its failure goes to the caller. */
  async track<T>(name: string, fn: () => Promise<T>, host?: string): Promise<T> {
    const step = this.beginStep(name, 1, host);
    try {
      const result = await fn();
      this.endStep(step, 'succeeded');
      return result;
    } catch (err) {
      this.endStep(step, 'failed', describeError(err).message);
      throw err;
    }
  }

  beginStep(name: string, attempt = 1, host?: string): StepRecord {
    const step: StepRecord = { id: this.nextStepId++, name, host, state: 'running', attempt, startedAt: now() };
    this.status.steps.push(step);
    this.status.currentStep = name;
    this.publish();
    return step;
  }

  /** Records a step that ran elsewhere (inside a batch activity), with the timings it reported. */
  recordStep(step: Omit<StepRecord, 'id'>): void {
    this.status.steps.push({ id: this.nextStepId++, ...step });
    this.publish();
  }

  endStep(step: StepRecord, state: StepRecord['state'], error?: string): void {
    step.state = state;
    step.endedAt = now();
    if (this.status.currentStep === step.name) this.status.currentStep = undefined;
    if (error) step.error = error;
    this.publish();
  }

  /** Registers how to undo what just succeeded; undone in reverse order when the run fails or is aborted. */
  compensate(name: string, fn: () => Promise<void>): void {
    this.compensations.push({ name, fn });
  }

  /** What is done stays done: from here on a failure no longer undoes the earlier steps. */
  commit(): void {
    this.compensations.length = 0;
  }

  private async runCompensations(): Promise<string[]> {
    const failures: string[] = [];
    while (this.compensations.length) {
      const { name, fn } = this.compensations.pop() as { name: string; fn: () => Promise<void> };
      const step = this.beginStep(`undo: ${name}`);
      try {
        await fn();
        this.endStep(step, 'compensated');
      } catch (err) {
        const { message } = describeError(err);
        this.endStep(step, 'compensation-failed', message);
        failures.push(`${name}: ${message}`);
      }
    }
    return failures;
  }

  // ---- notifications -------------------------------------------------------------------------------------

  private runRef() {
    const { workflow, workflowId, environment, service, release } = this.status;
    return { workflow, workflowId, environment, service, release };
  }

  /**
   * Queues a notification. The run goes on at once; posts go out one after another in the background (so the
   * run's thread exists before its replies), and a post that fails after its retries is logged, never thrown.
   */
  private notify(what: string, task: () => Promise<void>): void {
    this.notifying++;
    this.notifications = this.notifications
      .then(task)
      .catch((err) => log.warn('notification failed', { what, error: describeError(err).message }))
      .finally(() => {
        this.notifying--;
      });
  }

  /** Tells the run's audience, in one Slack thread per run; never waits, never fails the run. */
  announce(event: Announcement['event'], text: string): void {
    this.notify(`announce ${event}`, async () => {
      const place = await notifier.announce({ ...this.runRef(), event, text, channel: this.opts.notify?.channel, thread: this.runThread });
      if (place && !this.runThread) this.runThread = place;
    });
  }

  /** Lets queued notifications go out before the run ends, for a bounded time: the run's end does not wait on Slack. */
  private async flushNotifications(): Promise<void> {
    // Checked first: condition() with a timeout starts a timer even when there is nothing to wait for.
    if (this.notifying > 0) await condition(() => this.notifying === 0, '10s');
  }

  /** Undoes what was done, records the failure and ends the run with it. */
  async fail(message: string, type: string, cause?: unknown): Promise<never> {
    const undone = this.compensations.length;
    if (undone && (this.opts.announce || this.opts.notify)) this.announce('rollback', `${this.status.workflow}: ${message}; rolling back ${undone} step(s)`);
    const undoFailures = await this.runCompensations();
    const full = undoFailures.length ? `${message} (and undo failed: ${undoFailures.join('; ')})` : message;
    this.status.state = 'failed';
    this.status.error = full;
    this.status.currentStep = undefined;
    this.publish();
    if (this.opts.announce || this.opts.notify) this.announce('failed', `${this.status.workflow} failed${undone ? ` and was rolled back (${undone} undo step(s))` : ''}: ${full}`);
    await this.flushNotifications();
    throw ApplicationFailure.create({ message: full, type, nonRetryable: true, cause: cause instanceof Error ? cause : undefined });
  }

  async succeed(text?: string): Promise<void> {
    this.status.state = 'succeeded';
    this.status.currentStep = undefined;
    this.publish();
    if (this.opts.announce || this.opts.notify) this.announce('succeeded', text ?? `${this.status.workflow} succeeded`);
    await this.flushNotifications();
  }

  // ---- what the UI shows ---------------------------------------------------------------------------------

  private publish(): void {
    setCurrentDetails(renderMarkdown(this.status));
  }
}

const since = (start: string, end?: string) => (end ? `${((Date.parse(end) - Date.parse(start)) / 1000).toFixed(1)}s` : '…');

export function whoMayAnswer(g: GateRecord): string {
  const who = [...g.approvers, ...(g.approverGroups ?? []).map((x) => `Slack group ${x}`)];
  return who.length ? who.join(', ') : 'anyone';
}

/** The step timeline and open gates, as the Temporal UI's "current details" shows them. */
export function renderMarkdown(s: RunStatus): string {
  const lines = [
    `**${s.workflow}** ${[s.environment, s.service, s.release].filter(Boolean).join(' · ')}${s.dryRun ? ' (dry run)' : ''}`,
    `state: **${s.state}**, phase: ${s.phase}${s.currentStep ? `, step: ${s.currentStep}` : ''}`,
  ];
  if (s.error) lines.push(`error: ${s.error}`);
  for (const g of s.gates.filter((x) => x.state === 'open')) {
    lines.push(
      '',
      `### Waiting at gate \`${g.id}\` (${g.kind})`,
      g.prompt,
      ...(g.evidence ? ['', '```', g.evidence.slice(0, 2000), '```'] : []),
      g.kind === 'approval'
        ? `approvers: ${whoMayAnswer(g)}; ${g.votes.filter((v) => v.action === 'approve').length}/${g.quorum} approvals${g.fourEyes ? '; four eyes' : ''}${g.deadline ? `; deadline ${g.deadline}` : ''}`
        : `answer with resolve: ${(g.actions ?? []).join(', ')}${g.approvers.length ? ` (by ${g.approvers.join(', ')})` : ''}`,
      `payload: \`{"gate": "${g.id}", "by": "<you>"${g.kind === 'approval' ? '' : `, "action": "${(g.actions ?? ['retry'])[0]}"`}}\``,
    );
  }
  if (s.steps.length) {
    lines.push('', '| # | step | host | state | took |', '|---|---|---|---|---|');
    for (const st of s.steps.slice(-30)) lines.push(`| ${st.id} | ${st.name}${st.attempt > 1 ? ` (attempt ${st.attempt})` : ''} | ${st.host ?? ''} | ${st.state} | ${since(st.startedAt, st.endedAt)} |`);
  }
  if (s.decisions.length) {
    lines.push('', 'decisions:');
    for (const d of s.decisions) lines.push(`- ${d.at} ${d.by} ${d.action} \`${d.gate}\`${d.comment ? `: ${d.comment}` : ''}`);
  }
  return lines.join('\n');
}
