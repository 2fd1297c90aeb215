// What the run has changed and how to put it back. Undo steps run newest first, whatever ends the run early (a
// failure, an abort, a rejection, a cancellation), and always to the end: a cancellation cannot stop them.
import { CancellationScope } from '@temporalio/workflow';
import { describeError } from './failure';
import type { UndoReport } from './protocol';
import type { Timeline } from './timeline';

interface UndoStep {
  name: string;
  fn: () => Promise<void>;
}

export class Saga {
  private readonly steps: UndoStep[] = [];
  private committedAt = false;

  constructor(private readonly timeline: Timeline) {}

  /**
   * Registers how to undo what just changed. The returned function forgets it again, for a change the run has
   * itself put back (a host back in rotation).
   */
  add(name: string, fn: () => Promise<void>): () => void {
    const step = { name, fn };
    this.steps.push(step);
    return () => {
      const i = this.steps.indexOf(step);
      if (i >= 0) this.steps.splice(i, 1);
    };
  }

  /** What is done stays done: from here on nothing ending the run undoes the earlier steps. */
  commit(): void {
    this.steps.length = 0;
    this.committedAt = true;
  }

  get committed(): boolean {
    return this.committedAt;
  }

  get pending(): number {
    return this.steps.length;
  }

  /** Runs the undo steps newest first, each recorded on the timeline; a failed one does not stop the others. */
  unwind(why: UndoReport['why']): Promise<UndoReport> {
    return CancellationScope.nonCancellable(async () => {
      const report: UndoReport = { why, putBack: [], notPutBack: [], committed: this.committedAt };
      while (this.steps.length) {
        const { name, fn } = this.steps.pop() as UndoStep;
        const step = this.timeline.begin(`undo: ${name}`);
        try {
          await fn();
          this.timeline.end(step, 'compensated');
          report.putBack.push(name);
        } catch (err) {
          const { message } = describeError(err);
          this.timeline.end(step, 'compensation-failed', message);
          report.notPutBack.push(`${name}: ${message}`);
        }
      }
      return report;
    });
  }
}
