// Part 4, parked: many fleetRuns waiting at approval gates at once. The worker runs in its own process so its
// resident memory is its own; then every gate is approved (a bounded number of calls at a time) and the part
// times how long until all runs have finished.
import type { WorkflowHandle } from '@temporalio/client';
import type { fleetRun } from '../../src/workflows/fleetRun';
import { startChildWorker } from '../parked/worker';
import { writeOpsInventory } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { mapLimit } from '../lib/stats';
import { uniqueId, withTemporal } from '../lib/temporal';
import { gatedRun, isGateOpen } from './gate';
import type { Part, PartOutput } from './part';

/** Client calls in flight at a time: starts, status queries, approvals. */
const CALLS = 20;
/** Runs spread over this many hosts (one host each), as parked runs of a real team would be. */
const HOSTS = 10;
/** However slow the server, a phase ends (and the part fails) after this long. */
const PHASE_LIMIT_MS = 10 * 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withinLimit<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done after ${PHASE_LIMIT_MS} ms`)), PHASE_LIMIT_MS)));
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Passes over the runs not yet known to wait, a query each, until none is left or the phase limit passed. */
async function allParked(handles: WorkflowHandle[]): Promise<void> {
  const deadline = Date.now() + PHASE_LIMIT_MS;
  let pending = handles;
  while (pending.length) {
    if (Date.now() > deadline) throw new Error(`parking: ${pending.length} run(s) not at their gate after ${PHASE_LIMIT_MS} ms`);
    const open = await mapLimit(pending, CALLS, isGateOpen);
    pending = pending.filter((_, i) => !open[i]);
    // Queries go through the worker: polling without a pause would compete with the runs it waits for.
    if (pending.length) await sleep(250);
  }
}

export const parked: Part = {
  name: 'parked',
  describe: '500 and 1,000 fleetRuns parked at approval gates: worker memory, then a bulk approve until all finish',
  tools: ['opsflow', 'temporal'],
  async run(ctx): Promise<PartOutput> {
    const sizes = ctx.quick ? [100, 200] : [500, 1000];
    const figures: Figure[] = [];
    const notes: string[] = [];
    const inventory = writeOpsInventory();
    for (const n of sizes) {
      // A fresh server per size: the second size must not inherit the first one's closed runs.
      await withTemporal(async (t) => {
        const { historyShardCount } = await t.client.workflowService.getClusterInfo({});
        const worker = await startChildWorker(t.address, inventory);
        try {
          await sleep(1_000);
          const idle = await worker.memory();
          const t0 = performance.now();
          const handles: WorkflowHandle<typeof fleetRun>[] = await withinLimit('starting', mapLimit(Array.from({ length: n }, (_, i) => i), CALLS, (i) =>
            t.client.workflow.start<typeof fleetRun>('fleetRun', { taskQueue: worker.taskQueue, workflowId: uniqueId('parked'), args: [gatedRun(`h${(i % HOSTS) + 1}`)] }),
          ));
          const startedMs = performance.now() - t0;
          await allParked(handles);
          const parkedMs = performance.now() - t0;
          await sleep(2_000); // let the worker settle: what is measured is memory held while waiting
          const held = await worker.memory();
          const t1 = performance.now();
          await withinLimit('approving', mapLimit(handles, CALLS, (h) => h.executeUpdate('approve', { args: [{ gate: 'run', by: 'bench' }] })));
          const approvedMs = performance.now() - t1;
          const results = await withinLimit('finishing', mapLimit(handles, 100, (h) => h.result()));
          const finishedMs = performance.now() - t1;
          const failed = results.filter((r) => !r.ok).length;
          if (failed) throw new Error(`${failed} of ${n} parked runs failed after approval`);
          const after = await worker.memory();
          const label = `${n} parked`;
          figures.push(
            { name: `${label}: start all (${CALLS} calls at a time)`, value: startedMs, unit: 'ms' },
            { name: `${label}: start until all wait at their gate`, value: parkedMs, unit: 'ms' },
            { name: `${label}: worker RSS, idle before`, value: idle.rssMiB, unit: 'MiB' },
            { name: `${label}: worker RSS, all parked`, value: held.rssMiB, unit: 'MiB', note: `heap used ${held.heapUsedMiB.toFixed(0)} MiB` },
            { name: `${label}: worker RSS per parked run`, value: ((held.rssMiB - idle.rssMiB) * 1024) / n, unit: 'KiB' },
            { name: `${label}: bulk approve, all approvals answered`, value: approvedMs, unit: 'ms' },
            { name: `${label}: bulk approve until all finished`, value: finishedMs, unit: 'ms' },
            { name: `${label}: runs finished per second`, value: n / (finishedMs / 1000), unit: '/s' },
            { name: `${label}: worker RSS after all finished`, value: after.rssMiB, unit: 'MiB' },
          );
          if (n === sizes[0]) notes.push(`dev server: in-memory SQLite, ${historyShardCount} history shard(s); worker cache holds up to ${worker.maxCachedWorkflows} workflows (SDK default for its heap), so every parked run stays cached`);
        } finally {
          await worker.stop();
        }
      });
    }
    notes.push(`each run: resolve targets, an approval gate, then \`true\` on one of ${HOSTS} hosts; ${CALLS} client calls at a time for starts, status queries and approvals`);
    notes.push('the dev server writes every event through one SQLite connection on one history shard: starts, gate openings and completions queue behind each other, and that, not the worker, bounds the rates above');
    notes.push('the Postgres-backed compose stack (docker-compose.temporal.yml) runs 4 history shards over a connection pool, so writes for different runs proceed in parallel; not measured here (no Docker engine on this machine)');
    return { figures, notes };
  },
};
