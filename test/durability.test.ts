// The worker is SIGKILLed mid-run, as a crash or an OOM kill would; a new worker finishes the run and no host
// runs the command twice. For rollingUpgrade, the remote run guard collects the interrupted upgrade instead of
// starting it again, and the line goes on in order.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { fleetRun } from '../src/workflows/fleetRun';
import type { RunStatus } from '../src/runbook/protocol';
import type { rollingUpgrade } from '../src/workflows/rollingUpgrade';
import { fleetHome } from './support/fleet';
import { readHostFile, recordHistory, spawnWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { LOCAL, LOCAL_ENVIRONMENT, SSH } from './support/transports';

const UPGRADE_HOSTS = ['h4', 'h5', 'h6'];
const logDir = mkdtempSync(path.join(tmpdir(), 'opsflow-upgrade-kill-'));
let env: TestWorkflowEnvironment;
let inventory: string;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  chmodSync(logDir, 0o777);
  env = await testEnv();
  inventory = writeInventory({ environments: LOCAL_ENVIRONMENT });
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

  // The fleet's hosts share one home and one /var/tmp: each retry must collect its own host's run. A local host's
  // run guard outlives its worker too (it is not in the worker's process group).
  it.each([
    ['SSH', SSH, 'app', ['h4', 'h5', 'h6']],
    ['a local host', LOCAL, 'all', ['localhost']],
  ] as const)("while the command runs (%s): the retry collects each host's own result and no host runs it twice", async (_, t, group, hosts) => {
    const queue = unique('kill-run');
    const log = path.join(fleetHome(), `${unique('ran')}.log`);
    const lines = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const first = worker(queue);
    const h = await env.client.workflow.start<typeof fleetRun>('fleetRun', {
      taskQueue: queue,
      workflowId: unique('kill-run'),
      args: [{ environment: t.environment, target: { group }, command: ['sh', '-c', 'echo "$1" >> "$2"; sleep 3; echo "$1"', 'sh', '{node}', log], concurrency: 3 }],
    });
    await waitFor(() => existsSync(log) && lines().length === hosts.length, 'the command to start on every host', 60_000);
    await kill(first);
    worker(queue);
    const result = await h.result();
    expect(result.ok).toBe(true);
    expect(result.hosts.map((r) => [r.host, r.stdout.trim(), r.resumed])).toEqual(hosts.map((n) => [n, n, true]));
    for (const r of result.hosts) expect(r.ranOn).toEqual(t.ranOn(r.host));
    expect(lines().sort()).toEqual([...hosts]);
    if (t === SSH) recordHistory(h, 'fleetRun-killed-mid-command');
  });
});

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
          order: UPGRADE_HOSTS,
          rollbackPlan: 'nothing to roll back: the test upgrade only counts',
          upgrade: { command: ['sh', '-c', `echo "{node}" >> ${order}; echo ran >> "{root}/${counter}"; sleep 3; echo upgraded`], sudo: false },
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
    expect(result).toMatchObject({ ok: true, upgraded: UPGRADE_HOSTS, skipped: [] });
    for (const host of UPGRADE_HOSTS) expect(readHostFile(host, counter)).toBe('ran\n');
    expect(readFileSync(order, 'utf8').trim().split('\n')).toEqual(UPGRADE_HOSTS);
    expect(result.notes.map((n) => n.host)).toEqual(UPGRADE_HOSTS);
    // The interrupted upgrade really was retried: by the new worker, which found the first attempt's run.
    const history = await h.fetchHistory();
    const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
    expect(retried.length).toBeGreaterThan(0);
    recordHistory(h, 'rollingUpgrade-killed-mid-upgrade');
  }, 240_000);
});
