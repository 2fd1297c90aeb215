import { condition, defineSignal, log, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { DatabaseEnd } from '../activities/dataSync';
import { SA_ENVIRONMENT, SA_SERVICE } from '../common/constants';
import { restoreDatabaseInput, type RestoreDatabaseInput } from '../schemas/backups';
import { invalidInput, parseInput } from '../schemas/validate';
import { long, quick, stoppable } from './dataActivities';
import { describeError, Runbook } from '../runbook';

export interface RestoreDatabaseResult {
  dryRun: boolean;
  key: string;
  database: DatabaseEnd;
  restored?: { size: number; sha256: string };
  verified?: { tables: number; rows: number; checks: { name: string; ok: boolean; value: string | null }[] };
}

/** From the run that started an `afterBackup` restore: its backup of `key` is complete. */
export const backupDone = defineSignal<[{ key: string }]>('backupDone');

/**
 * Replaces the standby's database with a backup: the dump is downloaded and checked (size, sha256) before
 * anything is written to it (with `afterBackup`, its new database is made while the backup runs, and left empty
 * until then), restored into a new database beside the live one, verified there (row counts per table
 * against the backup's, the inventory's check queries), then swapped in by renaming both in one transaction.
 * The live database is the old data or the new, never a mix. Production is refused as a target.
 */
export async function restoreDatabase(rawInput: RestoreDatabaseInput): Promise<RestoreDatabaseResult> {
  const input = parseInput('restoreDatabase', restoreDatabaseInput, rawInput);
  const { system, key } = input;
  // No one else would send the signal it waits for.
  if (input.afterBackup && !workflowInfo().parent) throw invalidInput('restoreDatabase', ['afterBackup: only for a restore started by another run (dataSync), which signals when its backup is done']);
  let backedUp = false;
  setHandler(backupDone, ({ key: done }) => {
    if (done === key) backedUp = true;
  });
  upsertSearchAttributes([{ key: SA_SERVICE, value: system }]);
  const rb = new Runbook({ workflow: 'restoreDatabase', service: system, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, notify: input.notify });

  return rb.run(async () => {
    rb.phase('plan');
    const plan = await rb.step('plan', () => quick.planRestore({ system, to: input.to }), { required: true, onFailure: 'fail' });
    if (plan.environment) upsertSearchAttributes([{ key: SA_ENVIRONMENT, value: plan.environment }]);
    const infrastructure = plan.database.infrastructure;
    const result: RestoreDatabaseResult = { dryRun: input.dryRun, key, database: plan.database };
    if (input.dryRun) {
      await rb.succeed();
      return result;
    }

    rb.phase('restore');
    const ref = { system, infrastructure, key };
    // Each undo step is registered before its change: a step cut short may have made it, and undoing is idempotent.
    rb.compensate(`release backup ${key}`, () => quick.releaseBackup({ system, key }));
    await rb.step(`lease backup ${key}`, () => quick.leaseBackup({ system, key }), { required: true });
    // A restore that fails or is cancelled half-way leaves a partial database to drop; the live one is untouched.
    rb.compensate('drop the restored database', () => long.dropRestore({ system, infrastructure }));
    if (input.afterBackup) {
      // Creating a database takes a while: done while the backup runs rather than after it. A cancelled run waits
      // for the creation to end, so that its undo does not drop the database before it exists.
      await rb.step(`create the new database beside ${plan.database.name}`, () => stoppable.prepareRestore({ system, infrastructure }), { required: true });
      await rb.track(`wait for backup ${key}`, () => condition(() => backedUp));
    }
    // Only a first try restores into the prepared database: a retry after a failure starts from a new one.
    result.restored = await rb.step(`download, check and restore ${key} beside ${plan.database.name}`, (attempt) => stoppable.restoreToScratch({ ...ref, prepared: input.afterBackup && attempt === 1 }), { required: true });
    result.verified = await rb.step('verify row counts and checks', () => long.verifyRestore(ref), { required: true });

    rb.phase('swap');
    await rb.step(`swap it in as ${plan.database.name}`, () => quick.swapInRestore(ref), { required: true });
    rb.commit();
    try {
      await rb.track(`release backup ${key}`, () => quick.releaseBackup({ system, key }));
    } catch (err) {
      // The restore is done; pruning treats the lease of a finished run as released.
      log.warn('could not release the backup lease', { key, error: describeError(err).message });
    }
    await rb.succeed(`${system}: ${infrastructure} restored from ${key} (${result.verified.tables} tables, ${result.verified.rows} rows)`);
    return result;
  });
}
