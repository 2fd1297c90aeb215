// The keys in force for this run's gates, fetched by an activity when the run starts: they are in the run's
// history, so replay and `opsflow audit` see the same keys, and editing the inventory later changes nothing here.
import { patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { retry } from '../../workflows/activityOptions';
import type { RunSigners } from './check';

// Reading the worker's inventory is quick and local; a few tries cover a worker restarting under it.
const inventory = proxyActivities<Activities>({ startToCloseTimeout: '5s', retry: retry() });

export class SignersInForce {
  private signers?: RunSigners;
  private failure?: unknown;
  private readonly loading?: Promise<void>;

  constructor(environment: string | undefined) {
    // Runs recorded before signed gates scheduled no such activity: they replay without it, and take unsigned answers.
    if (patched('signed-gates')) {
      const { namespace, workflowId, runId } = workflowInfo();
      this.loading = inventory.gateSigners({ namespace, workflowId, runId, environment }).then(
        (s) => {
          this.signers = s;
        },
        (err: unknown) => {
          this.failure = err;
        },
      );
    }
  }

  /**
   * Awaited before a gate opens, so every answer is checked against the keys. Nothing to await (undefined) for a
   * run from before signed gates: an extra await would reorder its commands on replay.
   */
  ready(): Promise<void> | undefined {
    return this.loading?.then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /** Undefined for a run that started before signed gates existed. */
  get current(): RunSigners | undefined {
    return this.signers;
  }
}
