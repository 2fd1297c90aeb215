import type { z } from 'zod';
import { InvalidInput, toFailure } from '../common/errors';

export const INVALID_INPUT = InvalidInput.type;

/** One line per problem, `field: reason`, in the order of the input. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(input)'}: ${issue.message}`);
}

/**
 * Validates a workflow's input where the workflow starts, because the Temporal UI and raw clients bypass the
 * CLI. A bad input fails the run at once and non-retryably, naming every bad field, before anything changes.
 */
export function parseInput<S extends z.ZodType>(workflow: string, schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw invalidInput(workflow, describeIssues(parsed.error));
}

/** The failure of a run whose input is bad, one `field: reason` per problem; for checks a schema cannot make. */
export function invalidInput(workflow: string, problems: string[]) {
  return toFailure(new InvalidInput(`invalid input for ${workflow}:\n${problems.map((p) => `- ${p}`).join('\n')}`, { details: [problems] }));
}
