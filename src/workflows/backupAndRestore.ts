// A backup of production's database and its restore on the standby, as two child runs: what dataSync and
// hotStandbyRelease both do.
import { CancellationScope, executeChild, patched, startChild } from '@temporalio/workflow';
import type { BackupDatabaseInput, RestoreDatabaseInput } from '../schemas/backups';
import type { Runbook } from '../runbook';
import { backupDatabase, type BackupDatabaseResult } from './backupDatabase';
import { backupDone, restoreDatabase, type RestoreDatabaseResult } from './restoreDatabase';

const RESTORE_BESIDE_BACKUP = 'restore-beside-backup';

export interface BackupAndRestore {
  /** Each child is a sub-step of the caller's step, under these names. */
  names: { backup: string; restore: string };
  /** The children's ids extend the caller's, so a change embargo held by the caller lets them act too. */
  ids: { backup: string; restore: string };
  backup: BackupDatabaseInput;
  restore: RestoreDatabaseInput;
}

/**
 * Backs up, then restores that backup and verifies it. The restore starts with the backup and makes its new
 * database meanwhile (creating a database takes a while), then waits for the signal sent once the backup is
 * complete. A backup that fails cancels the restore, whose undo drops that database; a restore that fails is
 * reported as itself.
 */
export async function backupAndRestore(rb: Runbook, o: BackupAndRestore): Promise<{ backup: BackupDatabaseResult; restore: RestoreDatabaseResult }> {
  const backingUp = () => rb.track(o.names.backup, () => executeChild(backupDatabase, { workflowId: o.ids.backup, args: [o.backup] }));
  // Runs from before the restore started beside the backup replay as they ran: one after the other.
  if (!patched(RESTORE_BESIDE_BACKUP)) {
    const backup = await backingUp();
    return { backup, restore: await rb.track(o.names.restore, () => executeChild(restoreDatabase, { workflowId: o.ids.restore, args: [o.restore] })) };
  }
  const restoreScope = new CancellationScope();
  // Both children start in the same workflow task: the backup does not wait for the restore to have started.
  const starting = restoreScope.run(() => startChild(restoreDatabase, { workflowId: o.ids.restore, args: [{ ...o.restore, afterBackup: true }] }));
  const restored = rb.track(o.names.restore, async () => (await starting).result());
  restored.catch(() => undefined);
  let backup: BackupDatabaseResult;
  try {
    backup = await backingUp();
  } catch (err) {
    restoreScope.cancel();
    await restored.catch(() => undefined);
    throw err;
  }
  // A restore that could not start, or has already ended (it failed), cannot be signalled: its own failure is the
  // one to report.
  const child = await starting;
  await child.signal(backupDone, { key: o.restore.key }).catch((err: unknown) => restored.then(() => Promise.reject(err)));
  return { backup, restore: await restored };
}
