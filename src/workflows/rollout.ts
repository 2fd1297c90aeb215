// The per-node release switch that blueGreenDeploy and rollbackRelease share: out of rotation, switch the
// symlink, restart, health, back in rotation. Every step is an idempotent activity, so a crash anywhere in it
// resumes without doing anything twice.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HealthResult, NodeRef } from '../activities/release';
import type { Runbook } from './gates';

const nonRetryableErrorTypes = ['InvalidInput', 'UnknownTarget', 'ReleaseConflict', 'HealthCheckFailed', 'SmokeTestFailed', 'RestartFailed', 'TagConflict', 'HostKeyRejected', 'SshAuthFailed', 'SshConfigError'];

// Every node activity heartbeats while it works, so a worker that dies is noticed within the heartbeat
// timeout and the step retried elsewhere, however long its start-to-close allowance.

/** Reads, switches and restarts. */
export const quick = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5, nonRetryableErrorTypes },
});

/** Installs and smoke tests: fetching code and building dependencies can take a while. */
export const slow = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '5s', maximumAttempts: 3, nonRetryableErrorTypes },
});

/** Waits (drain, health, HAProxy UP) that poll. */
export const waiting = proxyActivities<Activities>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '1s', maximumAttempts: 5, nonRetryableErrorTypes },
});

export async function switchNode(rb: Runbook, ref: NodeRef, releaseId: string): Promise<HealthResult> {
  const host = ref.node;
  await rb.track('out of rotation', () => waiting.setRotation({ ...ref, inRotation: false }), host);
  await rb.track(`switch to ${releaseId}`, () => quick.switchRelease({ ...ref, releaseId }), host);
  await rb.track('restart', () => quick.restartService(ref), host);
  const health = await rb.track('health check', () => waiting.checkHealth(ref), host);
  await rb.track('back in rotation', () => waiting.setRotation({ ...ref, inRotation: true }), host);
  return health;
}

export function batches<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

export function describeHealth(h: HealthResult): string {
  return `${h.url} → HTTP ${h.status} after ${h.attempts} attempt(s), ${h.ms} ms${h.body ? `\n${h.body}` : ''}`;
}
