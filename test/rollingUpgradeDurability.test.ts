// rollingUpgrade with its worker SIGKILLed in the middle of a host's upgrade, as a crash or an OOM kill would:
// a new worker finishes the line in order, and the remote run guard collects the interrupted upgrade instead
// of starting it again, so every host is upgraded exactly once.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunStatus } from '../src/workflows/gates';
import type { rollingUpgrade } from '../src/workflows/rollingUpgrade';
import { readHostFile, recordHistory, spawnWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

const HOSTS = ['h4', 'h5', 'h6'];
let env: TestWorkflowEnvironment;
let inventory: string;
const workers: ChildProcess[] = [];
const logDir = mkdtempSync(path.join(tmpdir(), 'opsflow-upgrade-kill-'));

beforeAll(async () => {
  chmodSync(logDir, 0o777);
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

describe('rollingUpgrade with its worker killed', () => {
  // Generous: two workers start in their own processes (each bundles the workflows), and the retry waits out a
  // heartbeat timeout.
  it('in the middle of a host upgrade: a new worker finishes the line, every host upgraded exactly once, in order', async () => {
    const queue = unique('upgrade-kill');
    const id = unique('upgrade-kill');
    const counter = `upgrades-${id}`;
    const order = path.join(logDir, `${id}.log`);
    const first = worker(queue);
    const h = await env.client.workflow.start<typeof rollingUpgrade>('rollingUpgrade', {
      taskQueue: queue,
      workflowId: id,
      args: [
        {
          environment: 'test',
          order: HOSTS,
          rollbackPlan: 'nothing to roll back: the test upgrade only counts',
          upgrade: { command: ['sh', '-c', `echo "$OPSFLOW_HOST" >> ${order}; echo ran >> "$OPSFLOW_HOST_DIR/${counter}"; sleep 3; echo upgraded`], sudo: false },
          packages: ['dash'],
          checks: [{ kind: 'command', command: ['test', '-d', '/tmp'] }],
          approval: { approvers: ['alice'] },
        },
      ],
    });
    await waitFor(async () => (await status(h)).gates.some((g) => g.state === 'open'), 'the approval gate', 60_000);
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    // The second host's upgrade is running when the worker dies.
    await waitFor(() => readHostFile('h5', counter), 'the upgrade to start on h5', 60_000);
    expect(readHostFile('h6', counter)).toBeUndefined();
    await kill(first);
    worker(queue);

    const result = await h.result();
    expect(result).toMatchObject({ ok: true, upgraded: HOSTS, skipped: [] });
    for (const host of HOSTS) expect(readHostFile(host, counter)).toBe('ran\n');
    expect(readFileSync(order, 'utf8').trim().split('\n')).toEqual(HOSTS);
    expect(result.notes.map((n) => n.host)).toEqual(HOSTS);
    // The interrupted upgrade really was retried: by the new worker, which found the first attempt's run.
    const history = await h.fetchHistory();
    const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
    expect(retried.length).toBeGreaterThan(0);
    recordHistory(h, 'rollingUpgrade-killed-mid-upgrade');
  }, 240_000);
});
