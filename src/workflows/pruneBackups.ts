import { upsertSearchAttributes } from '@temporalio/workflow';
import type { BackupEntry } from '../activities/backups';
import { SA_SERVICE } from '../common/constants';
import { expiredKeys } from '../schemas/backupKey';
import { pruneBackupsInput, type PruneBackupsInput } from '../schemas/backups';
import { parseInput } from '../schemas/validate';
import { long, quick } from './dataActivities';
import { Runbook } from '../runbook';

export interface PruneBackupsResult {
  dryRun: boolean;
  location: string;
  retention: { days: number; keep: number };
  /** Expired by the retention rule (all of them on a dry run). */
  expired: string[];
  deleted: string[];
  /** Expired, but a running restore uses them: kept for now. */
  inUse: { key: string; by: string[] }[];
  kept: string[];
}

/**
 * Deletes a system's backups older than the retention's days, always keeping the newest `keep` complete ones;
 * incomplete backups (interrupted dumps) go by age alone. A backup a running restore holds is never deleted.
 */
export async function pruneBackups(rawInput: PruneBackupsInput): Promise<PruneBackupsResult> {
  const input = parseInput('pruneBackups', pruneBackupsInput, rawInput);
  upsertSearchAttributes([{ key: SA_SERVICE, value: input.system }]);
  const rb = new Runbook({ workflow: 'pruneBackups', service: input.system, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, notify: input.notify });

  rb.phase('list');
  const listing = await rb.step('list backups', () => quick.listBackups({ system: input.system }), { required: true, onFailure: 'fail' });
  const keys = (complete: boolean) => listing.backups.filter((b: BackupEntry) => b.complete === complete).map((b) => b.key);
  const now = new Date();
  const expired = [...expiredKeys(keys(true), now, listing.timezone, listing.retention), ...expiredKeys(keys(false), now, listing.timezone, { ...listing.retention, keep: 0 })].sort();
  const result: PruneBackupsResult = { dryRun: input.dryRun, location: listing.location, retention: listing.retention, expired, deleted: [], inUse: [], kept: listing.backups.map((b) => b.key).filter((k) => !expired.includes(k)) };
  if (input.dryRun || !expired.length) {
    await rb.succeed();
    return result;
  }

  rb.phase('delete');
  const outcome = await rb.step(`delete ${expired.length} backup(s)`, () => long.deleteBackups({ system: input.system, keys: expired }), { required: true });
  result.deleted = outcome.deleted;
  result.inUse = outcome.inUse;
  await rb.succeed(`${input.system}: deleted ${outcome.deleted.length} backup(s)${outcome.inUse.length ? `, kept ${outcome.inUse.length} in use` : ''}`);
  return result;
}
