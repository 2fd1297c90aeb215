import { ApplicationFailure, ChildWorkflowFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/workflow';

/** The message (and type) a person should read for a failure: an activity's failure wraps the one it threw. */
export function describeError(err: unknown): { message: string; type?: string } {
  let e: unknown = err;
  let child: ChildWorkflowFailure | undefined;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) {
    if (e instanceof ChildWorkflowFailure) child = e;
    e = (e as { cause?: unknown }).cause;
  }
  if (e instanceof ApplicationFailure) return { message: e.message, type: e.type ?? undefined };
  // A child run ended from outside says only "Terminated" or "Timeout": which run it was is the news.
  if (child && (e instanceof TerminatedFailure || e instanceof TimeoutFailure)) {
    return { message: `${child.workflowType} run ${child.execution.workflowId} ${e instanceof TerminatedFailure ? 'was terminated' : `timed out (${e.message})`}` };
  }
  return { message: e instanceof Error ? e.message : String(e) };
}
