// The runbook a workflow is written against: phases, steps, gates and undo steps. The parts each do one job
// (protocol, gates, timeline, saga, notifier, render); this puts them together, and makes ending early (a failure,
// an abort, a rejection, a cancellation) undo what the run changed, by construction rather than in each workflow.
import { ApplicationFailure, CancellationScope, CancelledFailure, isCancellation, log, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { isFatal } from '../common/errors';
import type { ApprovalGateSpec, FailurePolicy } from '../schemas/common';
import { describeError } from './failure';
import { Gates, type ApprovalOutcome } from './gates';
import { Notifier } from './notifier';
import { statusQuery, type RunStatus, type StepRecord, type UndoReport } from './protocol';
import { describeUndo, renderMarkdown } from './render';
import { Saga } from './saga';
import { SignersInForce } from './signatures/inForce';
import { Timeline } from './timeline';

export { describeError } from './failure';
export type { ApprovalOutcome } from './gates';

export const SKIPPED = Symbol('skipped');

const publish = (s: RunStatus) => setCurrentDetails(renderMarkdown(s));

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

export class Runbook {
  readonly status: RunStatus;
  private readonly timeline: Timeline;
  private readonly saga: Saga;
  private readonly notifier: Notifier;
  private readonly gates: Gates;
  private readonly announces: boolean;

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
    const show = () => publish(this.status);
    this.announces = !!(opts.announce || opts.notify);
    this.timeline = new Timeline(this.status, show);
    this.saga = new Saga(this.timeline);
    const { workflow, workflowId, environment, service, release } = this.status;
    this.notifier = new Notifier(() => ({ workflow, workflowId, environment, service, release }), opts.notify);
    const signers = new SignersInForce(opts.environment);
    this.gates = new Gates(this.status, { requestedBy: opts.requestedBy, failure: opts.failure, notifier: this.notifier, publish: show, signers });
    setHandler(statusQuery, () => this.status);
    this.gates.installHandlers();
    show();
    if (this.announces) {
      const what = [environment, service, release].filter(Boolean).join(' ');
      this.announce('started', `${workflow}${what ? ` ${what}` : ''} started${opts.requestedBy ? ` by ${opts.requestedBy}` : ''}${opts.dryRun ? ' (dry run)' : ''}`);
    }
  }

  /**
   * Runs the workflow's body. Cancelling the run (UI, CLI, a parent) is an abort: the registered undo steps run
   * newest first, in a scope no second cancel can stop, the status says what was put back, and the run then ends
   * Canceled. A run that has committed is not rolled back.
   */
  async run<T>(body: () => Promise<T>, where?: () => string): Promise<T> {
    try {
      const value = await body();
      // The cancel came while the last step finished anyway (a step in flight is waited for): still a cancel.
      if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('the run was cancelled as it finished');
      return value;
    } catch (err) {
      if (!isCancellation(err)) throw err;
      await CancellationScope.nonCancellable(() => this.cancelled(where));
      throw err;
    }
  }

  /** `where` adds what the workflow alone knows: where its line of hosts or customers stood. */
  private async cancelled(where?: () => string): Promise<void> {
    log.warn('run cancelled: undoing', { undo: this.saga.pending, committed: this.saga.committed });
    this.gates.closeOpen('cancelled');
    this.status.phase = 'undo';
    const report = await this.saga.unwind('cancelled');
    const what = `${describeUndo(report)}${where ? `; ${where()}` : ''}`;
    this.end('cancelled', `cancelled; ${what}`, report);
    if (this.announces) this.announce('cancelled', `${this.status.workflow} was cancelled: ${what}`);
    await this.notifier.flush();
  }

  private end(state: RunStatus['state'], error: string, undo: UndoReport): void {
    this.status.state = state;
    this.status.error = error;
    this.status.undo = undo;
    this.status.currentStep = undefined;
    publish(this.status);
  }

  phase(name: string): void {
    this.status.phase = name;
    log.info('phase', { phase: name });
    if (this.opts.notify) this.announce('phase', `phase: ${name}`);
    publish(this.status);
  }

  /**
   * Runs a step; on failure (after the activity's own retries) the failure policy decides what follows. A step
   * marked `required` offers only retry or abort, and so always returns its result.
   */
  async step<T>(name: string, fn: (attempt: number) => Promise<T>, opts: StepOptions & { required: true }): Promise<T>;
  async step<T>(name: string, fn: (attempt: number) => Promise<T>, opts?: StepOptions & { required?: false }): Promise<T | typeof SKIPPED>;
  async step<T>(name: string, fn: (attempt: number) => Promise<T>, opts: StepOptions & { required?: boolean } = {}): Promise<T | typeof SKIPPED> {
    for (let attempt = 1; ; attempt++) {
      const step = this.timeline.begin(name, attempt, opts.host);
      try {
        const result = await fn(attempt);
        this.timeline.end(step, 'succeeded');
        return result;
      } catch (err) {
        const { message, type } = describeError(err);
        this.timeline.end(step, 'failed', message);
        // A cancelled run is not a failed step: no operator is asked, the cancellation goes on up to run().
        if (isCancellation(err)) throw err;
        if (isFatal(type) || (opts.onFailure ?? this.opts.failure.onFailure) === 'fail') return this.fail(message, type ?? 'StepFailed', err);
        const action = await this.gates.failure(name, message, !opts.required);
        if (action === 'skip') {
          step.state = 'skipped';
          publish(this.status);
          return SKIPPED;
        }
        if (action === 'abort') return this.fail(`aborted after "${name}" failed: ${message}`, 'Aborted');
      }
    }
  }

  /** Records a sub-step of a larger one: no gate of its own, its failure goes to the caller. */
  track<T>(name: string, fn: () => Promise<T>, host?: string): Promise<T> {
    return this.timeline.track(name, fn, host);
  }

  beginStep(name: string, attempt = 1, host?: string): StepRecord {
    return this.timeline.begin(name, attempt, host);
  }

  endStep(step: StepRecord, state: StepRecord['state'], error?: string): void {
    this.timeline.end(step, state, error);
  }

  /** Records a step that ran elsewhere (inside a batch activity), with the timings it reported. */
  recordStep(step: Omit<StepRecord, 'id'>): void {
    this.timeline.record(step);
  }

  /** Waits for approval; the caller decides what a rejection undoes. */
  approval(id: string, spec: ApprovalGateSpec, prompt: string, evidence?: string): Promise<ApprovalOutcome> {
    return this.gates.approval(id, spec, prompt, evidence);
  }

  /** Asks an operator what to do about a failed step; a timeout aborts. */
  failureGate(step: string, error: string, skippable = true): Promise<'retry' | 'skip' | 'abort'> {
    return this.gates.failure(step, error, skippable);
  }

  /**
   * Registers how to undo what just succeeded; undone in reverse order when the run fails, is aborted or is
   * cancelled. The returned function forgets the undo step, once the run has put that change back itself.
   */
  compensate(name: string, fn: () => Promise<void>): () => void {
    return this.saga.add(name, fn);
  }

  /** What is done stays done: from here on neither a failure nor a cancellation undoes the earlier steps. */
  commit(): void {
    this.saga.commit();
  }

  /** Tells the run's audience, in one Slack thread per run; never waits, never fails the run. */
  announce(event: Parameters<Notifier['announce']>[0], text: string): void {
    this.notifier.announce(event, text);
  }

  /** Undoes what was done, records the failure and ends the run with it. */
  async fail(message: string, type: string, cause?: unknown): Promise<never> {
    const undone = this.saga.pending;
    if (undone && this.announces) this.announce('rollback', `${this.status.workflow}: ${message}; rolling back ${undone} step(s)`);
    const report = await this.saga.unwind('failed');
    const full = report.notPutBack.length ? `${message} (and undo failed: ${report.notPutBack.join('; ')})` : message;
    this.end('failed', full, report);
    if (this.announces) this.announce('failed', `${this.status.workflow} failed${undone ? ` and was rolled back (${undone} undo step(s))` : ''}: ${full}`);
    await CancellationScope.nonCancellable(() => this.notifier.flush());
    throw ApplicationFailure.create({ message: full, type, nonRetryable: true, cause: cause instanceof Error ? cause : undefined });
  }

  /** Ends the run well: what it did stays, whatever comes after (a late cancel included). */
  async succeed(text?: string): Promise<void> {
    this.saga.commit();
    this.status.state = 'succeeded';
    this.status.currentStep = undefined;
    publish(this.status);
    if (this.announces) this.announce('succeeded', text ?? `${this.status.workflow} succeeded`);
    await CancellationScope.nonCancellable(() => this.notifier.flush());
  }
}
