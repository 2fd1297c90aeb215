// Workflows that exist only for the bench; bundled from this file, never registered by opsflow's worker.
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { BenchActivities } from './activities';

const remote = proxyActivities<BenchActivities>({ startToCloseTimeout: '10s' });
const local = proxyLocalActivities<BenchActivities>({ startToCloseTimeout: '10s' });

/** `steps` no-op activities one after the other; returns the milliseconds spent inside them. */
export async function noopSteps(steps: number, kind: 'activity' | 'local'): Promise<number> {
  const { noop } = kind === 'local' ? local : remote;
  let inside = 0;
  for (let i = 0; i < steps; i++) inside += await noop();
  return inside;
}
