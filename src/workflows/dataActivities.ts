// Activity options shared by the data workflows (dataSync, backupDatabase, restoreDatabase, pruneBackups,
// pauseDataSync). Every activity heartbeats, so a worker that dies is noticed within the heartbeat timeout and the
// step retried elsewhere (and idempotently: keyed backups, a restore into a new database).
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { activitiesFor, HEARTBEAT_TIMEOUT, retry, type Retry } from './activityOptions';

/** Plans, leases, schedules, a swap: seconds. */
export const quick = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry(),
});

const LONG_RETRY: Retry = { initialInterval: '5s', maximumInterval: '1m' };

/** Dumps, downloads, restores, counts and rclone runs: hours on a large system. */
export const long = proxyActivities<Activities>({
  startToCloseTimeout: '12h',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry(LONG_RETRY),
});

/**
 * The long steps that write where their undo cleans up (rclone into the standby's files, the scratch database's
 * creation and pg_restore into it): a cancelled run waits until the activity has stopped its tool and said so, so the undo never
 * runs beside a step that is still writing.
 */
export const stoppable = activitiesFor(12 * 3600_000, LONG_RETRY, { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
