// Activity options shared by the data workflows (dataSync, backupDatabase, restoreDatabase, pruneBackups,
// pauseDataSync). Every long activity heartbeats, so a worker that dies is noticed within the heartbeat timeout
// and the step retried elsewhere (and idempotently: keyed backups, a restore into a new database).
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

export const nonRetryableErrorTypes = [
  'InvalidInput',
  'UnknownTarget',
  'Misconfigured',
  'DestinationIsProduction',
  'BackupNotFound',
  'BackupCorrupt',
  'VerifyFailed',
  'RestoreMissing',
  'RestoreNotVerified',
  'ScheduleNotFound',
  'ToolMissing',
  'ToolConfigError',
  'PgConfigError',
  'AwsConfigError',
  'Embargoed',
  'HostKeyRejected',
  'SshAuthFailed',
  'SshConfigError',
];

/** Plans, leases, schedules, a swap: seconds. */
export const quick = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5, nonRetryableErrorTypes },
});

/** Dumps, downloads, restores, counts and rclone runs: hours on a large system. */
export const long = proxyActivities<Activities>({
  startToCloseTimeout: '12h',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '5s', maximumInterval: '1m', maximumAttempts: 5, nonRetryableErrorTypes },
});
