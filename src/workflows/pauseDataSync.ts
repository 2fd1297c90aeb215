import { CancellationScope, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { SA_SERVICE } from '../common/constants';
import { pauseDataSyncInput, syncScheduleId, type PauseDataSyncInput } from '../schemas/dataSync';
import { parseInput } from '../schemas/validate';
import { quick } from './dataActivities';
import { Runbook } from '../runbook';

export interface PauseDataSyncResult {
  dryRun: boolean;
  schedules: string[];
  /** Already paused by someone else when this run started: left paused at its end. */
  alreadyPaused: string[];
}

/**
 * Holds a system's nightly schedules for a while (maintenance, an investigation) and resumes them afterwards
 * whatever happens: the resume is a durable timer, not someone's memory. Cancelling the run resumes them at once.
 * Schedules that were already paused when it started stay as they were.
 */
export async function pauseDataSync(rawInput: PauseDataSyncInput): Promise<PauseDataSyncResult> {
  const input = parseInput('pauseDataSync', pauseDataSyncInput, rawInput);
  upsertSearchAttributes([{ key: SA_SERVICE, value: input.system }]);
  const rb = new Runbook({ workflow: 'pauseDataSync', service: input.system, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, notify: input.notify });
  const ids = input.schedules.map((kind) => syncScheduleId(input.system, kind));
  const result: PauseDataSyncResult = { dryRun: input.dryRun, schedules: ids, alreadyPaused: [] };
  if (input.dryRun) {
    await rb.succeed();
    return result;
  }

  const { workflowId } = workflowInfo();
  rb.phase('pause');
  const paused = await rb.step(`pause ${ids.join(', ')}`, () => quick.pauseSchedules({ ids, note: `${input.reason} (paused by ${input.requestedBy ?? 'opsflow'}, run ${workflowId}, for ${input.for})` }), { required: true });
  result.alreadyPaused = paused.filter((p) => p.wasPaused).map((p) => p.id);
  const mine = paused.filter((p) => !p.wasPaused).map((p) => p.id);
  rb.phase('paused');
  try {
    // The schema checked the duration's format.
    await sleep(input.for as Duration);
  } finally {
    await CancellationScope.nonCancellable(async () => {
      rb.phase('resume');
      if (mine.length) await rb.track(`resume ${mine.join(', ')}`, () => quick.unpauseSchedules({ ids: mine, note: `resumed by run ${workflowId}` }));
    });
  }
  await rb.succeed(`${input.system}: ${mine.join(', ') || 'nothing'} paused for ${input.for}, resumed`);
  return result;
}
