import { ActivityFailure, ApplicationFailure, isCancellation, TimeoutFailure, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SyncPlan } from '../activities/dataSync';
import type { CheckFilesResult, SyncFilesResult } from '../activities/rclone';
import { SA_ENVIRONMENT, SA_SERVICE } from '../common/constants';
import { backupKeyFor } from '../schemas/backupKey';
import { dataSyncInput, type DataSyncInput } from '../schemas/dataSync';
import { parseInput } from '../schemas/validate';
import type { BackupDatabaseResult } from './backupDatabase';
import { backupAndRestore } from './backupAndRestore';
import { quick, stoppable } from './dataActivities';
import { Runbook, SKIPPED } from '../runbook';
import type { RestoreDatabaseResult } from './restoreDatabase';

/** rclone did not end the sync itself (cancelled, killed, timed out): files it was writing may be cut short. */
function cutShort(err: unknown): boolean {
  if (isCancellation(err)) return true;
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  return cause instanceof TimeoutFailure || (cause instanceof ApplicationFailure && cause.type === 'RcloneInterrupted');
}

/** Differing paths listed in the failure; the count is always complete. */
const DIFF_CAP = 50;

export interface DataSyncResult {
  dryRun: boolean;
  plan: SyncPlan;
  key?: string;
  files?: { sync: SyncFilesResult; check: CheckFilesResult } | 'skipped';
  database?: { backup: BackupDatabaseResult; restore: RestoreDatabaseResult } | 'skipped';
}

/**
 * The nightly copy of production to the hot standby (the GigaDB runbook's "Keeping data in sync"): the file store
 * with `rclone sync` then `rclone check`, which must find no difference; the database by a backup of production to
 * S3 and its restore on the standby, verified. The direction comes from the roles registry, and a run whose
 * destination would be production is refused.
 */
export async function dataSync(rawInput: DataSyncInput): Promise<DataSyncResult> {
  const input = parseInput('dataSync', dataSyncInput, rawInput);
  const { system } = input;
  upsertSearchAttributes([{ key: SA_SERVICE, value: system }]);
  const rb = new Runbook({ workflow: 'dataSync', service: system, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, notify: input.notify });
  const { workflowId } = workflowInfo();

  return rb.run(async () => {
    rb.phase('plan');
    const plan = await rb.step('plan', () => quick.planDataSync({ system, stores: input.stores, to: input.to }), { required: true, onFailure: 'fail' });
    if (plan.environment) upsertSearchAttributes([{ key: SA_ENVIRONMENT, value: plan.environment }]);
    const key = plan.database ? (input.key ?? backupKeyFor(workflowInfo().startTime, plan.timezone, 'scheduled')) : undefined;
    const result: DataSyncResult = { dryRun: input.dryRun, plan, key };
    if (input.dryRun) {
      await rb.succeed();
      return result;
    }
    const ends = { system, from: plan.from, to: plan.to };

    if (plan.files) {
      const files = plan.files;
      rb.phase('files');
      const since = Date.now();
      let forgetUndo = (): void => undefined;
      // A sync that rclone did not end itself (cancelled, killed, timed out) may have left files cut short: from
      // then on, until the files step is over, ending the run early removes them.
      const runSync = () =>
        stoppable.syncFiles(ends).catch((err: unknown) => {
          if (cutShort(err)) {
            forgetUndo();
            forgetUndo = rb.compensate(`remove what rclone left unfinished in ${files.to}`, async () => {
              const removed = await stoppable.removeCutShort({ ...ends, since });
              const at = new Date().toISOString();
              if (removed.length) rb.recordStep({ name: `removed ${removed.length} unfinished file(s): ${removed.slice(0, 10).join(', ')}${removed.length > 10 ? ', …' : ''}`, host: files.runsOn, state: 'compensated', attempt: 1, startedAt: at, endedAt: at });
            });
          }
          throw err;
        });
      const outcome = await rb.step(`files ${plan.from} → ${plan.to}`, async () => {
        const sync = await rb.track(`rclone sync ${files.from} → ${files.to}`, runSync, files.runsOn);
        const check = await rb.track('rclone check', () => stoppable.checkFiles({ ...ends, cap: DIFF_CAP }), files.runsOn);
        if (check.differences) {
          const listed = check.paths.map((p) => `${p.path} (${p.kind})`).join('\n');
          throw ApplicationFailure.create({
            message: `rclone check found ${check.differences} difference(s) between ${files.from} and ${files.to} after the sync${check.differences > check.paths.length ? ` (first ${check.paths.length})` : ''}:\n${listed}`,
            type: 'FilesDiffer',
            nonRetryable: true,
            details: [check],
          });
        }
        return { sync, check };
      });
      forgetUndo();
      result.files = outcome === SKIPPED ? 'skipped' : outcome;
    }

    if (plan.database && key) {
      const db = plan.database;
      rb.phase('database');
      const common = { system, key, requestedBy: input.requestedBy, failure: { onFailure: 'fail' as const } };
      const outcome = await rb.step(`database ${plan.from} → ${plan.to} via backup ${key}`, () =>
        backupAndRestore(rb, {
          names: { backup: `back up ${db.from.name} (${plan.from}) as ${key}`, restore: `restore ${key} on ${db.to.name} (${plan.to})` },
          ids: { backup: `${workflowId}/backup-${key}`, restore: `${workflowId}/restore-${key}` },
          backup: { ...common, from: plan.from },
          restore: { ...common, to: plan.to },
        }),
      );
      result.database = outcome === SKIPPED ? 'skipped' : outcome;
    }

    await rb.succeed(`${system}: ${input.stores.join(' and ')} synced from ${plan.from} to ${plan.to}`);
    return result;
  });
}
