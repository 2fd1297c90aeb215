import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { BackupResult } from '../activities/backups';
import type { DatabaseEnd } from '../activities/dataSync';
import { SA_ENVIRONMENT, SA_SERVICE } from '../common/constants';
import { backupKeyFor } from '../schemas/backupKey';
import { backupDatabaseInput, type BackupDatabaseInput } from '../schemas/backups';
import { parseInput } from '../schemas/validate';
import { long, quick } from './dataActivities';
import { Runbook } from '../runbook';

export interface BackupDatabaseResult {
  dryRun: boolean;
  key: string;
  database: DatabaseEnd;
  /** Where the dump goes: s3://bucket/prefix/system/<key>.dump */
  url: string;
  backup?: BackupResult;
}

/**
 * Dumps a system's database (production's by default) to S3 under a backup key, streaming, with its size,
 * sha256 and per-table row counts recorded. A key already backed up is reused, so a retried or repeated run
 * never dumps twice. A backup is complete only once its manifest, written last, exists: one failed or cancelled
 * half-way is never taken for a backup.
 */
export async function backupDatabase(rawInput: BackupDatabaseInput): Promise<BackupDatabaseResult> {
  const input = parseInput('backupDatabase', backupDatabaseInput, rawInput);
  upsertSearchAttributes([{ key: SA_SERVICE, value: input.system }]);
  const rb = new Runbook({ workflow: 'backupDatabase', service: input.system, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, notify: input.notify });

  return rb.run(async () => {
    rb.phase('plan');
    const plan = await rb.step('plan', () => quick.planBackup({ system: input.system, from: input.from }), { required: true, onFailure: 'fail' });
    if (plan.environment) upsertSearchAttributes([{ key: SA_ENVIRONMENT, value: plan.environment }]);
    const key = input.key ?? backupKeyFor(workflowInfo().startTime, plan.timezone, input.manual ? 'manual' : 'scheduled');
    const result: BackupDatabaseResult = { dryRun: input.dryRun, key, database: plan.database, url: `${plan.location}${key}.dump` };
    if (input.dryRun) {
      await rb.succeed();
      return result;
    }

    rb.phase('backup');
    result.backup = await rb.step(`dump ${plan.database.name} (${plan.database.infrastructure}) to ${result.url}`, () => long.backupToS3({ system: input.system, infrastructure: plan.database.infrastructure, key }), { required: true });
    await rb.succeed(`${input.system}: ${plan.database.infrastructure} backed up as ${key}${result.backup.reused ? ' (already there)' : ''}`);
    return result;
  });
}
