// Activity options shared by the data workflows (dataSync, backupDatabase, restoreDatabase, pruneBackups,
// pauseDataSync). Every activity heartbeats, so a worker that dies is noticed within the heartbeat timeout and the
// step retried elsewhere (and idempotently: keyed backups, a restore into a new database).
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { HEARTBEAT_TIMEOUT, retry } from './activityOptions';

/** Plans, leases, schedules, a swap: seconds. */
export const quick = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry(),
});

/** Dumps, downloads, restores, counts and rclone runs: hours on a large system. */
export const long = proxyActivities<Activities>({
  startToCloseTimeout: '12h',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry({ initialInterval: '5s', maximumInterval: '1m' }),
});
