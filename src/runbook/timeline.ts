// The run's steps as the status shows them: what ran, on which host, how it ended.
import type { RunStatus, StepRecord } from './protocol';
import { describeError } from './failure';

const now = () => new Date().toISOString();

export class Timeline {
  private nextId = 1;

  constructor(
    private readonly status: RunStatus,
    private readonly publish: () => void,
  ) {}

  begin(name: string, attempt = 1, host?: string): StepRecord {
    const step: StepRecord = { id: this.nextId++, name, host, state: 'running', attempt, startedAt: now() };
    this.status.steps.push(step);
    this.status.currentStep = name;
    this.publish();
    return step;
  }

  end(step: StepRecord, state: StepRecord['state'], error?: string): void {
    step.state = state;
    step.endedAt = now();
    if (this.status.currentStep === step.name) this.status.currentStep = undefined;
    if (error) step.error = error;
    this.publish();
  }

  /** A step that ran elsewhere (inside a batch activity), with the timings it reported. */
  record(step: Omit<StepRecord, 'id'>): void {
    this.status.steps.push({ id: this.nextId++, ...step });
    this.publish();
  }

  /** Runs fn as a step of its own; its failure is recorded and goes on to the caller. */
  async track<T>(name: string, fn: () => Promise<T>, host?: string): Promise<T> {
    const step = this.begin(name, 1, host);
    try {
      const result = await fn();
      this.end(step, 'succeeded');
      return result;
    } catch (err) {
      this.end(step, 'failed', describeError(err).message);
      throw err;
    }
  }
}
