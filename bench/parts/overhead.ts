// Part 2, overhead: what Temporal adds per step. A workflow of 20 no-op activities on the local dev server,
// (workflow wall time − time inside the activities) / steps; the same with local activities, which run in the
// worker without a round trip through the server's task queues. Each on the dev server as opsflow runs it and
// with Temporal's default settings.
import { benchActivities } from '../activities';
import type { Figure } from '../lib/report';
import { repeat, summarize, timed } from '../lib/stats';
import { startBenchWorker, uniqueId, withTemporal, type BenchTemporal } from '../lib/temporal';
import type { noopSteps } from '../workflows';
import type { Part, PartOutput } from './part';

const STEPS = 20;
const KINDS = [
  ['activity', 'activities'],
  ['local', 'local activities'],
] as const;
/** The dev server as opsflow runs it (config/dynamicconfig/opsflow.yaml), and with Temporal's defaults. */
const SERVERS = [
  ['', false],
  [', server defaults', true],
] as const;

/** Per-step overhead of `noopSteps` workflows on `t`, for activities and local activities; `server` ends each figure's label. */
export async function overheadFigures(t: BenchTemporal, quick: boolean, server: string): Promise<Figure[]> {
  // 30 runs, or fewer once 45 s are spent (an activity workflow takes about 2 s here).
  const bound = quick ? { times: 10, budgetMs: 20_000 } : { times: 30, budgetMs: 45_000 };
  const figures: Figure[] = [];
  const worker = await startBenchWorker(t, require.resolve('../workflows'), benchActivities);
  try {
    for (const [kind, label] of KINDS) {
      const run = async () => {
        let inside = 0;
        const wall = await timed(async () => {
          inside = await t.client.workflow.execute<typeof noopSteps>('noopSteps', { taskQueue: worker.taskQueue, workflowId: uniqueId('noop'), args: [STEPS, kind] });
        });
        return { wall, perStep: (wall - inside) / STEPS };
      };
      await run(); // untimed: the first workflow task warms the worker's workflow context
      const runs = await repeat(bound, run);
      const perStep = summarize(runs.map((r) => r.perStep));
      const wall = summarize(runs.map((r) => r.wall));
      figures.push({ name: `${label}${server}: overhead per step`, value: perStep.median, unit: 'ms', stats: perStep });
      figures.push({ name: `${label}${server}: workflow of ${STEPS} steps, wall`, value: wall.median, unit: 'ms', stats: wall });
    }
  } finally {
    await worker.stop();
  }
  return figures;
}

export const overhead: Part = {
  name: 'overhead',
  describe: `Temporal's cost per step: a workflow of ${STEPS} no-op activities (and local activities)`,
  tools: ['opsflow', 'temporal'],
  async run(ctx): Promise<PartOutput> {
    const figures: Figure[] = [];
    for (const [server, serverDefaults] of SERVERS) figures.push(...(await withTemporal((t) => overheadFigures(t, ctx.quick, server), { serverDefaults })));
    return {
      figures,
      notes: [
        'per step = (workflow wall time from start request to result − time inside the activities) / steps, on an in-memory dev server (SQLite) with the worker in the same process',
        'an activity step is two task dispatches (the activity, then the next workflow task); with the server defaults the history service reads the queue that dispatches them at most 20 times a second per shard (history.transferProcessorMaxPollRPS, default 20), so a lone run waits up to 50 ms at each; config/dynamicconfig/opsflow.yaml raises the cap (no measurable idle cost); local activities skip both dispatches',
      ],
    };
  },
};
