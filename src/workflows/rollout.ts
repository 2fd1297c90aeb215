// The per-node release switch that blueGreenDeploy and rollbackRelease share: out of rotation, switch the
// symlink, restart, health, back in rotation. Every step is an idempotent activity, so a crash anywhere in it
// resumes without doing anything twice.
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HealthResult, NodeRef } from '../activities/release';
import { activitiesFor, HEARTBEAT_TIMEOUT, retry } from './activityOptions';
import type { Runbook } from '../runbook';

// Every node activity heartbeats while it works (the worker's heartbeat interceptor sees to it), so a worker that
// dies is noticed within the heartbeat timeout and the step retried elsewhere, however long its allowance.
// A cancelled run waits for the node step in flight to end before it undoes anything: a restart still running
// must not race the undo's own restart.
const ONE_AT_A_TIME = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;

/** Reads, switches and restarts. */
export const quick = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  cancellationType: ONE_AT_A_TIME,
  retry: retry(),
});

/** Installs and smoke tests: fetching code and building dependencies can take a while. */
export const slow = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry({ initialInterval: '5s', maximumAttempts: 3 }),
});

/** Waits (drain, health, HAProxy UP) that poll, where the service's declared waits are not known. */
export const waiting = proxyActivities<Activities>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  cancellationType: ONE_AT_A_TIME,
  retry: retry(),
});

type Waits = Pick<typeof waiting, 'setRotation' | 'checkHealth'>;

export async function switchNode(rb: Runbook, ref: NodeRef, releaseId: string, waits: Waits = waiting): Promise<HealthResult> {
  const host = ref.node;
  await rb.track('out of rotation', () => waits.setRotation({ ...ref, inRotation: false }), host);
  await rb.track(`switch to ${releaseId}`, () => quick.switchRelease({ ...ref, releaseId }), host);
  await rb.track('restart', () => quick.restartService(ref), host);
  const health = await rb.track('health check', () => waits.checkHealth(ref), host);
  await rb.track('back in rotation', () => waits.setRotation({ ...ref, inRotation: true }), host);
  return health;
}

/** The waits of a node step, allowed what the inventory declares (a plan recorded before plans said has none). */
export function waitsFor(waitMs: number | undefined): Waits {
  return waitMs === undefined ? waiting : activitiesFor(waitMs, {}, { cancellationType: ONE_AT_A_TIME });
}

/**
 * switchNode, with the way back registered first: whatever ends the run early (a failure, an abort, a rejection,
 * a cancellation) puts the node back on the release it ran before, by the same sequence. Registered once per
 * node, so a retried switch does not undo twice.
 */
export function undoableSwitch(rb: Runbook, waitMs?: number): (ref: NodeRef, to: string, previous: string | null) => Promise<HealthResult> {
  const waits = waitsFor(waitMs);
  const registered = new Set<string>();
  return (ref, to, previous) => {
    if (!registered.has(ref.node)) {
      registered.add(ref.node);
      rb.compensate(previous ? `roll ${ref.node} back to ${previous}` : `put ${ref.node} back in rotation`, async () => {
        if (previous) await switchNode(rb, ref, previous, waits);
        else await waits.setRotation({ ...ref, inRotation: true });
      });
    }
    return switchNode(rb, ref, to, waits);
  };
}

export function batches<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

export function describeHealth(h: HealthResult): string {
  return `${h.url} → HTTP ${h.status} after ${h.attempts} attempt(s), ${h.ms} ms${h.body ? `\n${h.body}` : ''}`;
}
