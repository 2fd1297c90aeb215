// Worker processes as the tests drive them (spawnWorker): who they are to Temporal, when they exit, which one
// runs a step, and a step whose executions can be counted.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { expect } from 'vitest';
import type { fleetRun } from '../../src/workflows/fleetRun';
import { activityRuns } from './history';
import { unique, type spawnWorker } from './harness';

export type SpawnedWorker = ReturnType<typeof spawnWorker>;

/** The SDK's default identity, which opsflow keeps: pid@host. */
export const identity = (w: SpawnedWorker) => `${w.pid}@${hostname()}`;

export function exited(w: SpawnedWorker): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (w.exitCode !== null || w.signalCode !== null) return Promise.resolve({ code: w.exitCode, signal: w.signalCode });
  return new Promise((resolve) => w.once('exit', (code, signal) => resolve({ code, signal })));
}

/** The identities polling the queue for workflow tasks, as the UI's Workers tab lists them. */
export async function pollers(client: Client, queue: string): Promise<string[]> {
  const res = await client.workflowService.describeTaskQueue({ namespace: client.options.namespace, taskQueue: { name: queue }, taskQueueType: 1 });
  return (res.pollers ?? []).map((p) => p.identity ?? '');
}

export const appendedLines = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);

/** fleetRun on the app hosts (h4-h6) with a command that appends its host's name to `log`, sleeps, then prints it. */
export function startAppending(client: Client, queue: string, log: string, sleepS: number): Promise<WorkflowHandle<typeof fleetRun>> {
  return client.workflow.start<typeof fleetRun>('fleetRun', {
    taskQueue: queue,
    workflowId: unique(queue),
    args: [{ environment: 'test', target: { group: 'app' }, command: ['sh', '-c', `echo "$1" >> "$2"; sleep ${sleepS}; echo "$1"`, 'sh', '{node}', log], concurrency: 3 }],
  });
}

/** Of two workers, the one running the run's step (the server's record of who took it) and the other. */
export async function busyWorker(h: WorkflowHandle, pair: SpawnedWorker[]): Promise<{ busy: SpawnedWorker; other: SpawnedWorker }> {
  const running = (await h.describe()).raw.pendingActivities?.[0]?.lastWorkerIdentity;
  const [busy, other] = identity(pair[0]) === running ? pair : [pair[1], pair[0]];
  expect(identity(busy)).toBe(running);
  return { busy, other };
}

/**
 * The run of startAppending finished on every host with the command run once per host. `retried`: the step's
 * second attempt (after a missed heartbeat) collected the first attempt's commands instead of running them again.
 */
export async function expectRanOnce(h: WorkflowHandle<typeof fleetRun>, log: string, retried: boolean): Promise<void> {
  const result = await h.result();
  expect(result.ok).toBe(true);
  expect(result.hosts.map((r) => [r.host, r.stdout.trim(), r.resumed])).toEqual(['h4', 'h5', 'h6'].map((host) => [host, host, retried]));
  expect(appendedLines(log).sort()).toEqual(['h4', 'h5', 'h6']);
  const [batch] = (await activityRuns(h)).filter((a) => a.type === 'runOnHosts');
  expect(batch).toMatchObject(retried ? { attempts: 2, outcome: 'completed', previous: { timeout: 'HEARTBEAT' } } : { attempts: 1, outcome: 'completed' });
}
