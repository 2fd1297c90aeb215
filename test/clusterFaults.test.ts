// Faults a production Temporal has, on a real one (scripts/cluster.sh: the server on its own PostgreSQL): the
// server SIGKILLed and started again, PostgreSQL restarted, a worker SIGKILLed mid-step. Nothing is lost, every
// run completes, and no host runs a step's command twice. The file brings up a cluster of its own (a temporary
// directory, free ports), since it kills its server: never the suite's or anyone's. Where no cluster can be built
// it is skipped, saying why, unless OPSFLOW_TEST_TEMPORAL=cluster asks for clusters, as CI does.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { RunStatus } from '../src/runbook/protocol';
import type { fleetRun } from '../src/workflows/fleetRun';
import { fleetHome } from './support/fleet';
import { spawnWorker, unique, waitFor, writeInventory } from './support/harness';
import { appendedLines, busyWorker, exited, expectRanOnce, pollers, startAppending, type SpawnedWorker } from './support/workers';
import { clusterAt, freeClusterPorts, type Cluster } from './support/clusterControl';

const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-faults-cluster-'));
let cluster: Cluster;
let client: Client | undefined;
let connection: Connection | undefined;
let unavailable: string | undefined;
let inventory: string;
const workers: SpawnedWorker[] = [];

beforeAll(async () => {
  inventory = writeInventory();
  try {
    cluster = clusterAt({ dir, ...(await freeClusterPorts()) });
    await cluster.up();
  } catch (err) {
    if (process.env.OPSFLOW_TEST_TEMPORAL === 'cluster') throw err;
    unavailable = (err as Error).message;
    return;
  }
  connection = await Connection.connect({ address: cluster.address });
  client = new Client({ connection, namespace: 'default' });
}, 600_000);
afterEach(() => {
  for (const w of workers.splice(0)) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
});
afterAll(async () => {
  await connection?.close();
  await cluster?.down();
  rmSync(dir, { recursive: true, force: true });
});

/** The cluster's client, or the test is skipped saying why there is no cluster. */
function onCluster(ctx: TestContext): Client {
  if (!client) ctx.skip(`no Temporal cluster could be started (scripts/cluster.sh up): ${unavailable}`);
  return client as Client;
}

function worker(queue: string): SpawnedWorker {
  const w = spawnWorker(inventory, queue, { TEMPORAL_ADDRESS: cluster.address });
  workers.push(w);
  return w;
}

async function twoWorkers(c: Client, queue: string): Promise<SpawnedWorker[]> {
  const pair = [worker(queue), worker(queue)];
  await waitFor(async () => (await pollers(c, queue)).length === 2, 'both workers to poll', 120_000);
  return pair;
}

function gatedRuns(c: Client, queue: string, count: number): Promise<WorkflowHandle<typeof fleetRun>[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      c.workflow.start<typeof fleetRun>('fleetRun', {
        taskQueue: queue,
        workflowId: unique(`${queue}-gate`),
        args: [{ environment: 'test', target: { group: 'web' }, command: ['uname', '-s'], approval: { approvers: ['alice'] } }],
      }),
    ),
  );
}

async function allWaiting(runs: WorkflowHandle[]): Promise<void> {
  await waitFor(async () => (await Promise.all(runs.map((h) => h.query<RunStatus>('status')))).every((s) => s.state === 'waiting'), 'every gate to open', 120_000);
}

/** Approves each run (retrying while the cluster comes back) and expects each to complete on every host. */
async function approveAndComplete(runs: WorkflowHandle<typeof fleetRun>[]): Promise<void> {
  for (const h of runs) await waitFor(() => h.executeUpdate('approve', { args: [{ by: 'alice' }] }).then(() => true), `the approval of ${h.workflowId}`, 120_000, 1_000);
  for (const result of await Promise.all(runs.map((h) => h.result()))) {
    expect(result.ok).toBe(true);
    expect(result.hosts.map((r) => r.stdout.trim())).toEqual(['Linux', 'Linux', 'Linux']);
  }
}

describe('on a Temporal cluster', () => {
  it('the server SIGKILLed and started again while runs wait at gates and a step runs: every run completes, the command ran once per host', async (ctx) => {
    const c = onCluster(ctx);
    const queue = unique('server-kill');
    const log = path.join(fleetHome(), `${queue}.log`);
    await twoWorkers(c, queue);
    const gated = await gatedRuns(c, queue, 3);
    const running = await startAppending(c, queue, log, 8);
    await allWaiting(gated);
    await waitFor(() => appendedLines(log).length === 3, 'the command to start on every host', 60_000);

    cluster.killServer();
    await cluster.up();

    await approveAndComplete(gated);
    const result = await running.result();
    expect(result.ok).toBe(true);
    expect(result.hosts.map((r) => [r.host, r.stdout.trim()])).toEqual([
      ['h4', 'h4'],
      ['h5', 'h5'],
      ['h6', 'h6'],
    ]);
    expect(appendedLines(log).sort()).toEqual(['h4', 'h5', 'h6']);
  }, 300_000);

  it('PostgreSQL restarted while runs wait at gates: every run completes', async (ctx) => {
    const c = onCluster(ctx);
    const queue = unique('pg-restart');
    await twoWorkers(c, queue);
    const gated = await gatedRuns(c, queue, 3);
    await allWaiting(gated);

    cluster.restartPostgres();

    await approveAndComplete(gated);
  }, 300_000);

  it('one of two workers SIGKILLed mid-step: the other finishes the run, the command ran once per host', async (ctx) => {
    const c = onCluster(ctx);
    const queue = unique('worker-kill');
    const log = path.join(fleetHome(), `${queue}.log`);
    const pair = await twoWorkers(c, queue);
    const h = await startAppending(c, queue, log, 6);
    await waitFor(() => appendedLines(log).length === 3, 'the command to start on every host', 60_000);
    const { busy } = await busyWorker(h, pair);
    busy.kill('SIGKILL');
    expect(await exited(busy)).toEqual({ code: null, signal: 'SIGKILL' });
    // Retried: the other worker found each host's command of the first attempt and collected it.
    await expectRanOnce(h, log, true);
  }, 300_000);
});
