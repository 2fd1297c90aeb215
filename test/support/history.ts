// What a run's history says of its activities: how many attempts each took and how the last one ended.
import type { WorkflowHandle } from '@temporalio/client';

export interface ActivityRun {
  type: string;
  startToCloseMs: number;
  heartbeatMs: number;
  /** The attempt that ended the activity (Temporal records only the last attempt's start). */
  attempts: number;
  /** Why the attempt before the last one ended, when there was one: its failure type or its timeout type. */
  previous?: { type?: string; timeout?: 'START_TO_CLOSE' | 'HEARTBEAT' | 'OTHER'; message?: string };
  outcome: 'completed' | 'failed' | 'timed-out' | 'cancelled' | 'running';
  failure?: { type?: string; nonRetryable?: boolean; message?: string };
}

const ms = (d?: { seconds?: unknown; nanos?: number | null } | null) => (d ? Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) : 0);
const TIMEOUT_TYPES: Record<number, 'START_TO_CLOSE' | 'HEARTBEAT'> = { 1: 'START_TO_CLOSE', 4: 'HEARTBEAT' };

/** Every activity the run scheduled, in order, with its options, attempts and outcome. */
export async function activityRuns(handle: WorkflowHandle): Promise<ActivityRun[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const runs = new Map<string, ActivityRun>();
  for (const e of events) {
    const id = String(e.eventId);
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      runs.set(id, { type: scheduled.activityType?.name ?? '', startToCloseMs: ms(scheduled.startToCloseTimeout), heartbeatMs: ms(scheduled.heartbeatTimeout), attempts: 0, outcome: 'running' });
      continue;
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const run = runs.get(String(started.scheduledEventId)) as ActivityRun;
      run.attempts = started.attempt ?? 1;
      const last = started.lastFailure;
      if (last) {
        const timeout = last.timeoutFailureInfo ? (TIMEOUT_TYPES[Number(last.timeoutFailureInfo.timeoutType)] ?? 'OTHER') : undefined;
        run.previous = { type: last.applicationFailureInfo?.type ?? undefined, timeout, message: last.message ?? undefined };
      }
      continue;
    }
    const ended = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    if (!ended) continue;
    const run = runs.get(String(ended.scheduledEventId)) as ActivityRun;
    if (e.activityTaskCompletedEventAttributes) run.outcome = 'completed';
    else if (e.activityTaskCanceledEventAttributes) run.outcome = 'cancelled';
    else {
      const f = (e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes)?.failure;
      run.outcome = e.activityTaskFailedEventAttributes ? 'failed' : 'timed-out';
      run.failure = { type: f?.applicationFailureInfo?.type ?? undefined, nonRetryable: f?.applicationFailureInfo?.nonRetryable ?? undefined, message: f?.message ?? undefined };
    }
  }
  return [...runs.values()];
}
