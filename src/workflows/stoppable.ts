// Data steps that write where their undo cleans up (rclone into the standby's files, pg_restore into the scratch
// database). Cancelling waits until the activity has stopped its tool and said so, so the undo never runs beside
// a step that is still writing. As long as the other data steps (dataActivities.ts).
import { ActivityCancellationType } from '@temporalio/workflow';
import { activitiesFor } from './activityOptions';

export const stoppable = activitiesFor(12 * 3600_000, { initialInterval: '5s', maximumInterval: '1m' }, { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
