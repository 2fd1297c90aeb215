// Starting a run from the command line: the input checked against the workflow's schema, then the run's id,
// summary and search attributes.
import { randomBytes } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { SA_ENVIRONMENT, SA_RELEASE, SA_SERVICE, TASK_QUEUE } from '../common/constants';
import { workflowEntry, type WorkflowEntry } from '../schemas/index';
import { describeIssues } from '../schemas/validate';
import { CliError } from './cliError';
import { readInput } from './input';

/** An unknown workflow name is a command-line mistake: exit 2. */
export function entryOf(workflow: string): WorkflowEntry {
  try {
    return workflowEntry(workflow);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

/** The input from --input and --set, checked against the workflow's schema; any problem exits 2. */
export function validated(workflow: string, o: { input?: string; set: string[] }, requestedBy: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const entry = entryOf(workflow);
  let raw: Record<string, unknown>;
  try {
    raw = readInput(o.input, o.set);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  // The operator starting the run is its requester unless the input names one, so four eyes just works.
  const input = { requestedBy, ...raw, ...overrides };
  const parsed = entry.input.safeParse(input);
  if (!parsed.success) throw new CliError(`invalid input for ${workflow}:\n${describeIssues(parsed.error).map((p) => `  - ${p}`).join('\n')}`, 2);
  return input;
}

export async function startRun(client: Client, workflow: string, input: Record<string, unknown>, id?: string): Promise<WorkflowHandle> {
  const entry = workflowEntry(workflow);
  const labels = entry.labels(input);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return client.workflow.start(workflow, {
    taskQueue: process.env.OPSFLOW_TASK_QUEUE ?? TASK_QUEUE,
    workflowId: id ?? `${workflow}-${labels.environment ?? 'run'}-${stamp}-${randomBytes(2).toString('hex')}`,
    args: [input],
    staticSummary: entry.summary(input),
    typedSearchAttributes: [
      ...(labels.environment ? [{ key: SA_ENVIRONMENT, value: labels.environment }] : []),
      ...(labels.service ? [{ key: SA_SERVICE, value: labels.service }] : []),
      ...(labels.release ? [{ key: SA_RELEASE, value: labels.release }] : []),
    ],
  });
}
