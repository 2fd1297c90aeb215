// Workers as production runs them: several processes on one task queue, each naming itself (pid@host) and the
// code it runs (its build id) in the history the UI shows; stopped with SIGTERM, a worker lets a running step
// finish, or past its grace leaves it to another worker without the step's effect doubling; and a new release
// rolled out while a run waits at its gate (docs/operations.md, "Rolling out a new worker version").
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { RunStatus } from '../src/runbook/protocol';
import type { fleetRun } from '../src/workflows/fleetRun';
import { parseShutdownGrace } from '../src/workers/shutdown';
import { fleetHome } from './support/fleet';
import { ROOT, spawnWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { appendedLines, busyWorker, exited, expectRanOnce, identity, pollers, startAppending, type SpawnedWorker } from './support/workers';

let env: TestWorkflowEnvironment;
let inventory: string;
const workers: SpawnedWorker[] = [];

beforeAll(async () => {
  env = await testEnv();
  inventory = writeInventory();
});
afterEach(() => {
  for (const w of workers.splice(0)) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
});
afterAll(async () => env?.teardown());

function worker(queue: string, extraEnv: Record<string, string> = {}, release = ROOT): SpawnedWorker {
  const w = spawnWorker(inventory, queue, extraEnv, release);
  workers.push(w);
  return w;
}

/** Who completed each workflow task of the run, and with which build id, in order. */
async function workflowTasks(h: WorkflowHandle): Promise<{ identity: string; buildId: string }[]> {
  const events = (await h.fetchHistory()).events ?? [];
  return events
    .map((e) => e.workflowTaskCompletedEventAttributes)
    .filter((a) => !!a)
    .map((a) => ({ identity: a.identity ?? '', buildId: a.workerVersion?.buildId ?? '' }));
}

describe('workers on one task queue', () => {
  it('name themselves (pid@host) and their build id, derived from the workflow code, in the run\'s history', async () => {
    const queue = unique('identity');
    const a = worker(queue);
    const b = worker(queue);
    await waitFor(async () => (await pollers(env.client, queue)).length === 2, 'both workers to poll', 120_000);
    expect((await pollers(env.client, queue)).sort()).toEqual([identity(a), identity(b)].sort());
    const h = await env.client.workflow.start<typeof fleetRun>('fleetRun', { taskQueue: queue, workflowId: unique('identity'), args: [{ environment: 'test', target: { group: 'web' }, command: ['true'] }] });
    expect((await h.result()).ok).toBe(true);
    const tasks = await workflowTasks(h);
    expect(tasks.length).toBeGreaterThan(0);
    for (const t of tasks) {
      expect([identity(a), identity(b)]).toContain(t.identity);
      // Both run the same sources, so the same build id.
      expect(t.buildId).toMatch(/^opsflow-[0-9a-f]{16}$/);
    }
    expect(new Set(tasks.map((t) => t.buildId)).size).toBe(1);
  }, 180_000);
});

/** Two workers on a queue and a run on the app hosts whose command is running: returns the worker running it first. */
async function stepRunning(queue: string, log: string, sleepS: number, extraEnv: Record<string, string>) {
  const pair = [worker(queue, extraEnv), worker(queue, extraEnv)];
  await waitFor(async () => (await pollers(env.client, queue)).length === 2, 'both workers to poll', 120_000);
  const h = await startAppending(env.client, queue, log, sleepS);
  await waitFor(() => appendedLines(log).length === 3, 'the command to start on every host', 60_000);
  return { h, ...(await busyWorker(h, pair)) };
}

describe('a worker stopped with SIGTERM while a step runs', () => {
  it('lets the step finish within its grace and exits 0; the other worker carries the run on; the command ran once', async () => {
    const log = path.join(fleetHome(), `${unique('drain')}.log`);
    const { h, busy } = await stepRunning(unique('drain'), log, 6, {});
    busy.kill('SIGTERM');
    expect(await exited(busy)).toEqual({ code: 0, signal: null });
    expect(busy.output()).toContain('every running step finished');
    await expectRanOnce(h, log, false);
  }, 240_000);

  it('past its grace leaves the step to heartbeat out: the other worker collects the commands still running, none runs twice', async () => {
    const log = path.join(fleetHome(), `${unique('grace')}.log`);
    const { h, busy } = await stepRunning(unique('grace'), log, 12, { OPSFLOW_WORKER_SHUTDOWN_GRACE: '1' });
    busy.kill('SIGTERM');
    expect(await exited(busy)).toEqual({ code: 0, signal: null });
    expect(busy.output()).toContain('worker stopped with steps still running');
    // Retried: the other worker found each host's command of the first attempt, not cancelled, and collected it.
    await expectRanOnce(h, log, true);
  }, 240_000);

  it('takes its grace from --shutdown-grace or OPSFLOW_WORKER_SHUTDOWN_GRACE, whole seconds, and refuses anything else naming the setting', () => {
    expect(parseShutdownGrace('90', '--shutdown-grace')).toBe(90);
    expect(parseShutdownGrace('0', 'OPSFLOW_WORKER_SHUTDOWN_GRACE')).toBe(0);
    for (const bad of ['soon', '-1', '1.5', '']) expect(() => parseShutdownGrace(bad, '--shutdown-grace')).toThrow(/^--shutdown-grace: expected a whole number of seconds/);
  });
});

/**
 * A copy of this checkout whose fleetRun has one change behind patched(): a timer before anything else, which a
 * run recorded without it would not replay.
 */
function newRelease(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-release-b-'));
  cpSync(path.join(ROOT, 'src'), path.join(dir, 'src'), { recursive: true });
  for (const shared of ['node_modules', 'examples', 'config', 'package.json', 'tsconfig.json']) symlinkSync(path.join(ROOT, shared), path.join(dir, shared));
  const file = path.join(dir, 'src/workflows/fleetRun.ts');
  const source = readFileSync(file, 'utf8');
  const changed = `import { patched as rolloutPatched, sleep as rolloutSleep } from '@temporalio/workflow';\n${source}`.replace(
    "    rb.phase('resolve');\n",
    "    if (rolloutPatched('rollout-test')) await rolloutSleep('1 ms');\n    rb.phase('resolve');\n",
  );
  // Fails here, not later in a puzzling way, when fleetRun no longer reads as this test expects.
  expect(changed.split('\n').length - source.split('\n').length).toBe(2);
  writeFileSync(file, changed);
  return dir;
}

/** The patch ids a run recorded: a run records one when it first takes the new path of a patched() change. */
async function patches(h: WorkflowHandle): Promise<string[]> {
  const events = (await h.fetchHistory()).events ?? [];
  return events.flatMap((e) => {
    const m = e.markerRecordedEventAttributes;
    const data = m?.markerName === 'core_patch' ? m.details?.['patch-data']?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data).toString()) as { id: string }).id] : [];
  });
}
/** The change's 1 ms timers in the run's history (gates have timers of their own). */
async function changeTimers(h: WorkflowHandle): Promise<number> {
  const events = (await h.fetchHistory()).events ?? [];
  return events.filter((e) => {
    const t = e.timerStartedEventAttributes?.startToFireTimeout;
    return t && Number(t.seconds ?? 0) === 0 && t.nanos === 1_000_000;
  }).length;
}

describe('rolling out a new worker version while a run waits at its gate', () => {
  it('the waiting run finishes on the new worker along its old path; a new run takes the new one', async () => {
    const queue = unique('rollout');
    const release = newRelease();
    onTestFinished(() => rmSync(release, { recursive: true, force: true }));
    const a = worker(queue);
    const gated = await env.client.workflow.start<typeof fleetRun>('fleetRun', {
      taskQueue: queue,
      workflowId: unique('rollout-old'),
      args: [{ environment: 'test', target: { group: 'web' }, command: ['uname', '-s'], approval: { approvers: ['alice'] } }],
    });
    await waitFor(async () => (await gated.query<RunStatus>('status')).state === 'waiting', 'the gate to open', 120_000);
    const [{ buildId: buildA }] = await workflowTasks(gated);

    a.kill('SIGTERM');
    expect(await exited(a)).toEqual({ code: 0, signal: null });
    const b = worker(queue, {}, release);
    await waitFor(async () => (await pollers(env.client, queue)).includes(identity(b)), 'the new worker to poll', 120_000);

    await gated.executeUpdate('approve', { args: [{ by: 'alice' }] });
    const old = await gated.result();
    expect(old.ok).toBe(true);
    expect(old.hosts.map((r) => r.stdout.trim())).toEqual(['Linux', 'Linux', 'Linux']);
    const tasks = await workflowTasks(gated);
    expect(tasks.at(-1)).toMatchObject({ identity: identity(b) });
    const buildB = tasks.at(-1)?.buildId;
    expect(buildB).toMatch(/^opsflow-[0-9a-f]{16}$/);
    expect(buildB).not.toBe(buildA);
    // The old path: no marker for the change, no timer.
    expect(await patches(gated)).not.toContain('rollout-test');
    expect(await changeTimers(gated)).toBe(0);

    const fresh = await env.client.workflow.start<typeof fleetRun>('fleetRun', {
      taskQueue: queue,
      workflowId: unique('rollout-new'),
      args: [{ environment: 'test', target: { group: 'web' }, command: ['uname', '-s'] }],
    });
    expect((await fresh.result()).ok).toBe(true);
    expect(await patches(fresh)).toContain('rollout-test');
    expect(await changeTimers(fresh)).toBe(1);
  }, 300_000);
});
