// Part cluster: opsflow on a production-shaped Temporal (scripts/cluster.sh: the server on its own PostgreSQL).
// Many fleetRuns parked at approval gates with one and with two worker processes (worker and server memory, the
// database's size, a bulk approve until all finish); the overhead part's per-step cost measured on the cluster
// next to the dev server; the fanout part's opsflow run on 100 hosts, on the cluster.
import { readFileSync } from 'node:fs';
import type { WorkflowHandle } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import type { fleetRun } from '../../src/workflows/fleetRun';
import { clusterAt, clusterSettingsFromEnv, type Cluster } from '../../test/support/clusterControl';
import { opsflow } from '../contenders/opsflow';
import { firstHosts, writeOpsInventory } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { mapLimit, summarize, timed } from '../lib/stats';
import { connectTemporal, startOpsWorker, uniqueId, withTemporal, type BenchTemporal } from '../lib/temporal';
import { startChildWorker, type ChildWorker } from '../parked/worker';
import { gatedRun } from './gate';
import { overheadFigures } from './overhead';
import { allParked, approve, CALLS, HOSTS, withinLimit } from './parked';
import type { Part, PartOutput } from './part';

/** The bench's own cluster unless OPSFLOW_CLUSTER_* names one: the part leaves thousands of closed runs in it. */
const BENCH_CLUSTER = { dir: '/tmp/opsflow-bench-cluster', port: 7533, uiPort: 8533, pgPort: 5733 };
const FANOUT_HOSTS = 100;
const FANOUT_ROUNDS = 3;

const MiB = 2 ** 20;

function rssMiB(pid: number): number {
  const kB = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return kB ? Number(kB[1]) / 1024 : NaN;
}

/** Both of Temporal's databases, as PostgreSQL counts them (tables, indexes, TOAST). */
async function databaseMiB(cluster: Cluster): Promise<number> {
  const db = new PgClient({ host: '127.0.0.1', port: cluster.pgPort, user: 'temporal', password: cluster.password(), database: 'temporal' });
  await db.connect();
  try {
    const res = await db.query<{ bytes: string }>("select sum(pg_database_size(datname))::text as bytes from pg_database where datname in ('temporal', 'temporal_visibility')");
    return Number(res.rows[0].bytes) / MiB;
  } finally {
    await db.end();
  }
}

async function parkedFigures(t: BenchTemporal, cluster: Cluster, n: number, workerCount: number): Promise<Figure[]> {
  const inventory = writeOpsInventory();
  const taskQueue = uniqueId('cluster-parked');
  const workers: ChildWorker[] = [];
  try {
    for (let i = 0; i < workerCount; i++) workers.push(await startChildWorker(t.address, inventory, undefined, taskQueue));
    const dbBefore = await databaseMiB(cluster);
    const t0 = performance.now();
    const handles: WorkflowHandle<typeof fleetRun>[] = await withinLimit('starting', mapLimit(Array.from({ length: n }, (_, i) => i), CALLS, (i) =>
      t.client.workflow.start<typeof fleetRun>('fleetRun', { taskQueue, workflowId: uniqueId('cluster-parked'), args: [gatedRun(`h${(i % HOSTS) + 1}`)] }),
    ), n);
    await allParked(handles);
    const parkedMs = performance.now() - t0;
    const held = await Promise.all(workers.map((w) => w.memory()));
    const serverHeld = rssMiB(cluster.serverPid());
    const dbHeld = await databaseMiB(cluster);
    const t1 = performance.now();
    await withinLimit('approving', mapLimit(handles, CALLS, approve), n);
    const results = await withinLimit('finishing', mapLimit(handles, 100, (h) => h.result()), n);
    const finishedMs = performance.now() - t1;
    const failed = results.filter((r) => !r.ok).length;
    if (failed) throw new Error(`${failed} of ${n} parked runs failed after approval`);
    const label = `${n} parked, ${workerCount} worker${workerCount > 1 ? 's' : ''}`;
    return [
      { name: `${label}: start until all wait at their gate`, value: parkedMs, unit: 'ms' },
      { name: `${label}: worker RSS, all parked (sum)`, value: held.reduce((sum, m) => sum + m.rssMiB, 0), unit: 'MiB' },
      { name: `${label}: server RSS, all parked`, value: serverHeld, unit: 'MiB' },
      { name: `${label}: PostgreSQL, both databases, all parked`, value: dbHeld, unit: 'MiB', note: `${(((dbHeld - dbBefore) * 1024) / n).toFixed(1)} KiB more per run than before the starts` },
      { name: `${label}: bulk approve until all finished`, value: finishedMs, unit: 'ms' },
      { name: `${label}: runs finished per second`, value: n / (finishedMs / 1000), unit: '/s' },
    ];
  } finally {
    for (const w of workers) await w.stop();
  }
}

async function fanoutFigure(t: BenchTemporal, where: string): Promise<Figure> {
  const worker = await startOpsWorker(t, writeOpsInventory());
  try {
    const ops = opsflow(t, worker);
    await ops.run(firstHosts(5), ['true']); // untimed: the worker's first workflow task
    const samples: number[] = [];
    for (let i = 0; i < FANOUT_ROUNDS; i++) {
      await ops.reset?.();
      samples.push(await timed(() => ops.run(firstHosts(FANOUT_HOSTS), ['true'])));
    }
    const s = summarize(samples);
    return { name: `${FANOUT_HOSTS} hosts, true: ${ops.name}, ${where}`, value: s.median, unit: 'ms', stats: s };
  } finally {
    await worker.stop();
  }
}

export const cluster: Part = {
  name: 'cluster',
  describe: '10,000 fleetRuns parked at gates on a Temporal cluster with 1 and 2 workers (--quick: 1,000), step overhead and the 100-host fan-out, cluster vs dev server',
  tools: ['opsflow', 'temporal', 'postgresql'],
  async run(ctx): Promise<PartOutput> {
    const n = ctx.quick ? 1_000 : 10_000;
    const c = clusterAt(clusterSettingsFromEnv(BENCH_CLUSTER));
    const wasRunning = c.serverRunning();
    await c.up();
    const figures: Figure[] = [];
    const t = await connectTemporal(c.address);
    let shards = 0;
    try {
      shards = (await t.client.workflowService.getClusterInfo({})).historyShardCount ?? 0;
      figures.push(...(await overheadFigures(t, ctx.quick, ', cluster')));
      figures.push(...(await withTemporal((dev) => overheadFigures(dev, ctx.quick, ', dev server'))));
      figures.push(await fanoutFigure(t, 'cluster'));
      figures.push(await withTemporal((dev) => fanoutFigure(dev, 'dev server')));
      for (const workerCount of [1, 2]) figures.push(...(await parkedFigures(t, c, n, workerCount)));
    } finally {
      await t.stop();
      // A cluster someone named and runs stays up; one the part started is stopped, its data kept for inspection.
      if (!wasRunning) await c.down();
    }
    return {
      figures,
      notes: [
        `cluster: scripts/cluster.sh (Temporal server ${shards} history shards, all roles in one process, on PostgreSQL on the same machine), ${c.dir}; the dev server: in-memory SQLite, started per measurement`,
        `parked: each run resolves targets, waits at an approval gate, then runs \`true\` on one of ${HOSTS} hosts; workers in their own processes with the default cache; ${CALLS} client calls at a time; the 2-worker round runs after the 1-worker one on the same cluster, whose database then holds the first round's closed runs too`,
        `fan-out: the fanout part's opsflow contender (cold SSH pool, 50 at a time), median of ${FANOUT_ROUNDS} rounds`,
      ],
    };
  },
};
