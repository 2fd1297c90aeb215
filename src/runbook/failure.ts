import { ApplicationFailure } from '@temporalio/workflow';

/** The message (and type) a person should read for a failure: an activity's failure wraps the one it threw. */
export function describeError(err: unknown): { message: string; type?: string } {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  if (e instanceof ApplicationFailure) return { message: e.message, type: e.type ?? undefined };
  return { message: e instanceof Error ? e.message : String(e) };
}
