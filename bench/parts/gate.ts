// Part 3, gate: how long after a person approves does the run move on? A fleetRun waits at its approval gate;
// the approval goes in by each path of bench/gate/approvalPaths.ts; the latency runs from just before the call
// to the start of the activity it released, as the run's history records it.
import type { WorkflowHandle } from '@temporalio/client';
import type { RunStatus } from '../../src/runbook/protocol';
import type { fleetRun } from '../../src/workflows/fleetRun';
import { APPROVAL_VARIANTS, type ApprovalPath } from '../gate/approvalPaths';
import { releasedActivity } from '../gate/history';
import { ENVIRONMENT, writeOpsInventory } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { repeat, summarize } from '../lib/stats';
import { startOpsWorker, uniqueId, withTemporal, type BenchTemporal, type RunningWorker } from '../lib/temporal';
import type { Part, PartOutput } from './part';

const APPROVER = 'bench';

/** Whether gate `run` is open; a run that failed before reaching it fails the part. */
export async function isGateOpen(handle: WorkflowHandle): Promise<boolean> {
  const st = await handle.query<RunStatus>('status').catch(() => undefined);
  if (st?.state === 'failed') throw new Error(`${handle.workflowId} failed before its gate: ${st.error}`);
  return !!st?.gates.some((g) => g.id === 'run' && g.state === 'open');
}

/** Polls until gate `run` is open; bounded, a run that never gets there fails the part. */
async function gateOpen(handle: WorkflowHandle, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isGateOpen(handle)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${handle.workflowId}: gate "run" not open after ${timeoutMs} ms`);
}

/** The input of a one-host fleetRun that waits at an approval gate first. */
export function gatedRun(host: string) {
  return { environment: ENVIRONMENT, target: { hosts: [host] }, command: ['true'], approval: { approvers: [APPROVER] }, failure: { onFailure: 'fail' as const } };
}

async function oneApproval(t: BenchTemporal, worker: RunningWorker, approve: ApprovalPath) {
  const handle = await t.client.workflow.start<typeof fleetRun>('fleetRun', { taskQueue: worker.taskQueue, workflowId: uniqueId('gate'), args: [gatedRun('h1')] });
  await gateOpen(handle);
  const t0 = Date.now();
  await approve(handle.workflowId);
  const answered = Date.now() - t0;
  const result = await handle.result();
  if (!result.ok) throw new Error(`${handle.workflowId}: ${JSON.stringify(result.summary)}`);
  const released = await releasedActivity(handle);
  return { answered, scheduled: released.scheduledAt - t0, started: released.startedAt - t0, activity: released.activity };
}

export const gate: Part = {
  name: 'gate',
  describe: 'approve → next activity started in a fleetRun at its approval gate, per approval path (update, CLI, Slack click)',
  tools: ['opsflow', 'temporal'],
  async run(ctx): Promise<PartOutput> {
    const figures: Figure[] = [];
    const notes: string[] = [];
    await withTemporal(async (t) => {
      const worker = await startOpsWorker(t, writeOpsInventory());
      try {
        const env = { client: t.client, address: t.address, approver: APPROVER };
        for (const variant of APPROVAL_VARIANTS) {
          const approve = variant.path(env);
          await oneApproval(t, worker, approve); // untimed: first workflow task, the CLI's files into the disk cache
          const runs = await repeat({ times: ctx.quick ? Math.ceil(variant.runs / 3) : variant.runs, budgetMs: ctx.quick ? 30_000 : 90_000 }, () => oneApproval(t, worker, approve));
          const started = summarize(runs.map((r) => r.started));
          const scheduled = summarize(runs.map((r) => r.scheduled));
          const answered = summarize(runs.map((r) => r.answered));
          figures.push({ name: `${variant.name}: approve → activity started`, value: started.median, unit: 'ms', stats: started, note: runs[0].activity });
          figures.push({ name: `${variant.name}: approve → activity scheduled`, value: scheduled.median, unit: 'ms', stats: scheduled });
          figures.push({ name: `${variant.name}: approve call returned`, value: answered.median, unit: 'ms', stats: answered });
        }
      } finally {
        await worker.stop();
      }
    });
    notes.push('latency from just before the approval call to the ActivityTaskScheduled / ActivityTaskStarted event times of the first activity after the accepted update (server and bench share the clock)');
    notes.push('the CLI path includes starting node, loading the CLI (from dist/ when scripts/setup.sh built it from the current sources, else through tsx) and connecting to Temporal: what an operator at a terminal waits for');
    notes.push('with ~30 runs, p99 is close to the maximum');
    return { figures, notes };
  },
};
