// Reads, from a run's history, when the activity that an approval released was scheduled and started.
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time';

const T = temporal.api.enums.v1.EventType;

export interface Released {
  activity: string;
  /** Server clock, ms since the epoch: the bench runs on the server's machine, so Date.now() compares. */
  scheduledAt: number;
  startedAt: number;
}

/** The first activity scheduled after the update was accepted, and when it started. */
export async function releasedActivity(handle: WorkflowHandle): Promise<Released> {
  const events = (await handle.fetchHistory()).events ?? [];
  const accepted = events.findIndex((e) => e.eventType === T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED);
  if (accepted < 0) throw new Error(`${handle.workflowId}: no accepted update in the history`);
  const scheduled = events.slice(accepted).find((e) => e.eventType === T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
  const started = scheduled && events.find((e) => e.eventType === T.EVENT_TYPE_ACTIVITY_TASK_STARTED && Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(scheduled.eventId));
  if (!scheduled?.eventTime || !started?.eventTime) throw new Error(`${handle.workflowId}: no activity started after the approval`);
  return {
    activity: scheduled.activityTaskScheduledEventAttributes?.activityType?.name ?? '?',
    scheduledAt: tsToMs(scheduled.eventTime),
    startedAt: tsToMs(started.eventTime),
  };
}
