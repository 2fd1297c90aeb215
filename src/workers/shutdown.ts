// What a worker does when it is told to stop (SIGTERM, SIGINT: the SDK's runtime turns them into
// worker.shutdown()). It stops taking tasks at once; steps already running get a grace period to finish. A step
// still running after it is left as it is, not cancelled, and the process exits: cancelling would stop its remote
// command, whereas a step that stops heartbeating is retried on another worker within the heartbeat timeout, and
// the retry collects the command still running on the host (the remote run guard) instead of running it again.
import { Runtime, type WorkerOptions } from '@temporalio/worker';
import { wholeNumber, wholeNumberFromEnv } from './settings';

/** Seconds a stopping worker lets running steps finish. Supervisors should allow a little more (systemd's
 * TimeoutStopSec, Kubernetes' terminationGracePeriodSeconds) before they SIGKILL it. */
export const DEFAULT_SHUTDOWN_GRACE_S = 60;

/** A grace period from a flag or OPSFLOW_WORKER_SHUTDOWN_GRACE: whole seconds, 0 or more. */
export const parseShutdownGrace = (value: string, name: string) => wholeNumber(value, name, 'seconds');

export const shutdownGraceFromEnv = () => wholeNumberFromEnv('OPSFLOW_WORKER_SHUTDOWN_GRACE', DEFAULT_SHUTDOWN_GRACE_S, 'seconds');

/**
 * The SDK's shutdown grace is when it would cancel running steps: set where it is never reached. Its force time is
 * not used either, since the SDK then fails the worker (logged as an error) while steps still hold it; the grace
 * is counted by gracePeriod instead.
 */
export const NEVER_CANCEL_AT_SHUTDOWN: Pick<WorkerOptions, 'shutdownGraceTime'> = { shutdownGraceTime: '365 days' };

/**
 * Resolves `graceS` seconds after the process is first told to stop by one of the signals the SDK's runtime
 * shuts workers down on; dispose() when the worker stopped by itself.
 */
export function gracePeriod(graceS: number): { over: Promise<void>; dispose: () => void } {
  const signals = Runtime.instance().options.shutdownSignals;
  let timer: NodeJS.Timeout | undefined;
  let onSignal = () => {};
  const over = new Promise<void>((resolve) => {
    onSignal = () => {
      timer ??= setTimeout(resolve, graceS * 1000);
    };
  });
  for (const s of signals) process.on(s, onSignal);
  return {
    over,
    dispose() {
      clearTimeout(timer);
      for (const s of signals) process.off(s, onSignal);
    },
  };
}
