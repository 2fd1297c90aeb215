// What every workflow's activity options are made of. Retry policies take their non-retryable types from the
// error catalogue; a step whose duration the input or inventory declares gets that duration plus a margin as its
// start-to-close, and every such step heartbeats, so a worker that dies mid-step is noticed within the heartbeat
// timeout rather than at the end of the step's allowance. docs/timeouts.md lists what each activity gets.
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/common';
import type { Activities } from '../activities';
import { NON_RETRYABLE_TYPES } from '../common/errors';

/** Activities that wait heartbeat every 2-5 s; three missed beats and more mean the worker is gone. */
export const HEARTBEAT_TIMEOUT = '15s';

/** Added to a declared duration: connecting, reporting, the activity's own polling interval. */
export const MARGIN_MS = 2 * 60_000;

export type Retry = Omit<RetryPolicy, 'nonRetryableErrorTypes'>;

export function retry(policy: Retry = {}): RetryPolicy {
  return { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5, ...policy, nonRetryableErrorTypes: NON_RETRYABLE_TYPES };
}

/** Heartbeating activities for a step declared to take up to `declaredMs`. */
export function activitiesFor(declaredMs: number, policy: Retry = {}, more: Pick<ActivityOptions, 'cancellationType'> = {}) {
  return proxyActivities<Activities>({ startToCloseTimeout: declaredMs + MARGIN_MS, heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: retry(policy), ...more });
}
