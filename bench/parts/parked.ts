// Part 4, parked: many fleetRuns waiting at approval gates at once, more than the worker caches. The worker runs
// in its own process so its resident memory is its own; a few evicted runs are approved one at a time (they
// replay to answer), then every other gate (a bounded number of calls at a time) until all runs have finished.
import type { WorkflowHandle } from '@temporalio/client';
import type { fleetRun } from '../../src/workflows/fleetRun';
import { startChildWorker, type ChildWorker } from '../parked/worker';
import { writeOpsInventory } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { mapLimit, summarize } from '../lib/stats';
import { uniqueId, withTemporal } from '../lib/temporal';
import { releasedActivity } from '../gate/history';
import { gatedRun, isGateOpen } from './gate';
import type { Part, PartOutput } from './part';

/** Client calls in flight at a time: starts, status queries, approvals. */
export const CALLS = 20;
/** Runs spread over this many hosts (one host each), as parked runs of a real team would be. */
export const HOSTS = 10;
/** However slow the server, a phase ends (and the size fails) after this long: 10 minutes per 1,000 runs. */
const phaseLimitMs = (runs: number) => Math.max(1, runs / 1000) * 10 * 60_000;
/** Runs approved one at a time before the bulk approve, among the first parked: with more runs than the cache holds, evicted ones. */
const EVICTED_SAMPLE = 10;
/** --quick's sizes are about the worker's default cache, so it runs with this cap to show eviction at all. */
const QUICK_CACHE = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function withinLimit<T>(what: string, p: Promise<T>, runs = 1000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const ms = phaseLimitMs(runs);
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

export const approve = (h: WorkflowHandle) => h.executeUpdate('approve', { args: [{ gate: 'run', by: 'bench' }] });

/**
 * Whether a run waits at its gate, from the server alone: running with neither a workflow task nor an activity
 * pending can only be the gate here (resolving is a local activity, inside a workflow task). A status query would
 * make the worker replay every evicted run, which measures the queries instead of the parked runs.
 */
async function waitsAtGate(handle: WorkflowHandle): Promise<boolean> {
  const { status, raw } = await handle.describe();
  if (status.name !== 'RUNNING') throw new Error(`${handle.workflowId} ended (${status.name}) before its gate`);
  return !raw.pendingWorkflowTask && !raw.pendingActivities?.length;
}

/**
 * Passes over the runs not yet known to wait until none is left or the phase limit passed. With `worker`, the
 * largest RSS it had between passes: memory while runs arrive is what a cache cap must bound too.
 */
export async function allParked(handles: WorkflowHandle[], worker?: ChildWorker): Promise<number> {
  const limitMs = phaseLimitMs(handles.length);
  const deadline = Date.now() + limitMs;
  let pending = handles;
  let peakMiB = 0;
  while (pending.length) {
    if (Date.now() > deadline) throw new Error(`parking: ${pending.length} run(s) not at their gate after ${limitMs} ms`);
    const waiting = await mapLimit(pending, CALLS, waitsAtGate);
    pending = pending.filter((_, i) => !waiting[i]);
    if (worker) peakMiB = Math.max(peakMiB, (await worker.memory()).rssMiB);
    if (pending.length) await sleep(250);
  }
  // The gate's own view, for the runs the cache still holds: the detection above agrees with it.
  if (!(await isGateOpen(handles[handles.length - 1]))) throw new Error(`${handles[handles.length - 1].workflowId}: no open gate "run" although nothing is pending`);
  return peakMiB;
}

export const parked: Part = {
  name: 'parked',
  describe: '1,000 and 5,000 fleetRuns parked at approval gates (--quick: 100 and 200, cache capped at 50): worker memory, an evicted run approved, then a bulk approve until all finish',
  tools: ['opsflow', 'temporal'],
  async run(ctx): Promise<PartOutput> {
    const sizes = process.env.OPSFLOW_BENCH_PARKED_SIZES?.split(',').map(Number) ?? (ctx.quick ? [100, 200] : [1000, 5000]);
    if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`OPSFLOW_BENCH_PARKED_SIZES: expected whole numbers separated by commas, got ${process.env.OPSFLOW_BENCH_PARKED_SIZES}`);
    const cache = ctx.quick ? QUICK_CACHE : undefined;
    const figures: Figure[] = [];
    const notes: string[] = [];
    const inventory = writeOpsInventory();
    for (const n of sizes) {
      try {
        // A fresh server per size: the second size must not inherit the first one's closed runs.
        await withTemporal(async (t) => {
          const { historyShardCount } = await t.client.workflowService.getClusterInfo({});
          const worker = await startChildWorker(t.address, inventory, cache);
          try {
            await sleep(1_000);
            const idle = await worker.memory();
            const label = `${n} parked`;
            const t0 = performance.now();
            const handles: WorkflowHandle<typeof fleetRun>[] = await withinLimit('starting', mapLimit(Array.from({ length: n }, (_, i) => i), CALLS, (i) =>
              t.client.workflow.start<typeof fleetRun>('fleetRun', { taskQueue: worker.taskQueue, workflowId: uniqueId('parked'), args: [gatedRun(`h${(i % HOSTS) + 1}`)] }),
            ), n);
            const startedMs = performance.now() - t0;
            const peakMiB = await allParked(handles, worker);
            const parkedMs = performance.now() - t0;
            await sleep(2_000); // let the worker settle: what is measured is memory held while waiting
            const held = await worker.memory();
            // Recorded now: a size that fails later (a phase past its limit) still reports its memory.
            figures.push(
              { name: `${label}: start all (${CALLS} calls at a time)`, value: startedMs, unit: 'ms' },
              { name: `${label}: start until all wait at their gate`, value: parkedMs, unit: 'ms' },
              { name: `${label}: worker RSS, idle before`, value: idle.rssMiB, unit: 'MiB' },
              { name: `${label}: worker RSS, all parked`, value: held.rssMiB, unit: 'MiB', note: `main thread's heap ${held.heapUsedMiB.toFixed(0)} MiB, external ${held.externalMiB.toFixed(0)} MiB; the rest is the workflow thread's heap and native memory` },
              { name: `${label}: worker RSS, largest while parking`, value: peakMiB, unit: 'MiB' },
              { name: `${label}: worker RSS per parked run`, value: ((held.rssMiB - idle.rssMiB) * 1024) / n, unit: 'KiB' },
            );
            // The first runs parked were queried longest ago: past the cap they are out of the cache and replay to answer.
            const sample = n > worker.maxCachedWorkflows + EVICTED_SAMPLE ? handles.slice(0, EVICTED_SAMPLE) : [];
            const sampleT0: number[] = [];
            const sampleAnswered: number[] = [];
            for (const h of sample) {
              sampleT0.push(Date.now());
              await approve(h);
              sampleAnswered.push(Date.now() - sampleT0[sampleT0.length - 1]);
            }
            const t1 = performance.now();
            await withinLimit('approving', mapLimit(handles.slice(sample.length), CALLS, approve), n);
            const approvedMs = performance.now() - t1;
            const results = await withinLimit('finishing', mapLimit(handles, 100, (h) => h.result()), n);
            const finishedMs = performance.now() - t1;
            const failed = results.filter((r) => !r.ok).length;
            if (failed) throw new Error(`${failed} of ${n} parked runs failed after approval`);
            const after = await worker.memory();
            if (sample.length) {
              const started = await Promise.all(sample.map(async (h, i) => (await releasedActivity(h)).startedAt - sampleT0[i]));
              const answeredStats = summarize(sampleAnswered);
              const startedStats = summarize(started);
              figures.push(
                { name: `${label}: approve of an evicted run, answered`, value: answeredStats.median, unit: 'ms', stats: answeredStats },
                { name: `${label}: approve of an evicted run → next activity started`, value: startedStats.median, unit: 'ms', stats: startedStats },
              );
            }
            figures.push(
              { name: `${label}: bulk approve, all approvals answered`, value: approvedMs, unit: 'ms' },
              { name: `${label}: bulk approve until all finished`, value: finishedMs, unit: 'ms' },
              { name: `${label}: runs finished per second`, value: n / (finishedMs / 1000), unit: '/s' },
              { name: `${label}: worker RSS after all finished`, value: after.rssMiB, unit: 'MiB' },
            );
            if (n === sizes[0]) notes.push(`dev server: in-memory SQLite, ${historyShardCount} history shard(s); worker cache holds up to ${worker.maxCachedWorkflows} runs (${cache === undefined ? "the worker's default" : '--quick sets it below its sizes'}); past it the least recently used run is evicted and replays its history when its gate is answered`);
          } finally {
            await worker.stop();
          }
        });
      } catch (err) {
        // The figures taken before the failure stay; the sizes after it still run.
        notes.push(`${n} parked: stopped early: ${(err as Error).message}`);
      }
    }
    notes.push(`evicted-run approvals: the first ${EVICTED_SAMPLE} runs parked, approved one at a time before the bulk approve (the update's round trip, and from the call to the released activity's start in the run's history)`);
    notes.push(`each run: resolve targets, an approval gate, then \`true\` on one of ${HOSTS} hosts; ${CALLS} client calls at a time for starts, status queries and approvals`);
    notes.push('the dev server writes every event through one SQLite connection on one history shard: starts, gate openings and completions queue behind each other, and that, not the worker, bounds the rates above');
    notes.push('the Postgres-backed compose stack (docker-compose.temporal.yml) runs 4 history shards over a connection pool, so writes for different runs proceed in parallel; not measured here (no Docker engine on this machine)');
    return { figures, notes };
  },
};
