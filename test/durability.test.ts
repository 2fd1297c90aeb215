// The worker is SIGKILLed mid-run, as a crash or an OOM kill would; a new worker finishes the run and no host
// runs the command twice.
import type { ChildProcess } from 'node:child_process';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { fleetRun } from '../src/workflows/fleetRun';
import type { RunStatus } from '../src/workflows/gates';
import { readHostFile, recordHistory, spawnWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

let env: TestWorkflowEnvironment;
let inventory: string;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  env = await testEnv();
  inventory = writeInventory();
});
afterEach(() => {
  for (const w of workers.splice(0)) if (w.exitCode === null) w.kill('SIGKILL');
});
afterAll(async () => env?.teardown());

function worker(queue: string): ChildProcess {
  const w = spawnWorker(inventory, queue);
  workers.push(w);
  return w;
}

async function kill(w: ChildProcess): Promise<void> {
  w.kill('SIGKILL');
  if (w.exitCode === null && w.signalCode === null) await new Promise((r) => w.once('exit', r));
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');

describe('a worker killed with SIGKILL', () => {
  it('while a run waits at its approval gate: the new worker carries on from the gate', async () => {
    const queue = unique('kill-gate');
    const first = worker(queue);
    const h = await env.client.workflow.start<typeof fleetRun>('fleetRun', {
      taskQueue: queue,
      workflowId: unique('kill-gate'),
      args: [{ environment: 'test', target: { group: 'web' }, command: ['uname', '-s'], approval: { approvers: ['alice'] } }],
    });
    await waitFor(async () => (await status(h)).state === 'waiting', 'the gate to open', 60_000);
    await kill(first);
    worker(queue);
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    const result = await h.result();
    expect(result.ok).toBe(true);
    expect(result.hosts.map((r) => r.stdout.trim())).toEqual(['Linux', 'Linux', 'Linux']);
    recordHistory(h, 'fleetRun-killed-at-gate');
  });

  it('while the command runs: the retry collects the result and no host runs it twice', async () => {
    const queue = unique('kill-run');
    const counter = unique('count');
    const first = worker(queue);
    const h = await env.client.workflow.start<typeof fleetRun>('fleetRun', {
      taskQueue: queue,
      workflowId: unique('kill-run'),
      args: [{ environment: 'test', target: { group: 'app' }, command: ['sh', '-c', `echo ran >> "$OPSFLOW_HOST_DIR/${counter}"; sleep 3; echo done`], concurrency: 3 }],
    });
    await waitFor(() => ['h4', 'h5', 'h6'].every((host) => readHostFile(host, counter)), 'the command to start on every host', 60_000);
    await kill(first);
    worker(queue);
    const result = await h.result();
    expect(result.ok).toBe(true);
    expect(result.hosts.map((r) => [r.host, r.stdout.trim(), r.resumed])).toEqual([
      ['h4', 'done', true],
      ['h5', 'done', true],
      ['h6', 'done', true],
    ]);
    for (const host of ['h4', 'h5', 'h6']) expect(readHostFile(host, counter)).toBe('ran\n');
    recordHistory(h, 'fleetRun-killed-mid-command');
  });
});
