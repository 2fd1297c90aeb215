// Which workflow code a worker runs. The Web UI shows it beside the worker's identity (pid@host, the SDK's
// default) on every workflow task the worker completed, so a run's history says which release answered it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bundleWorkflowCode, Runtime, type WorkerOptions } from '@temporalio/worker';

export interface WorkflowCode {
  bundle: { code: string };
  buildId: string;
}

/**
 * Derived from the bundle, not from a version number or a git commit: workers started from the same sources
 * share it wherever they run, and any change that could break replay (workflow code, a dependency bundled
 * with it, the SDK) gives a new one, which nobody can forget to bump.
 */
export function buildIdOf(code: string): string {
  return `opsflow-${createHash('sha256').update(code).digest('hex').slice(0, 16)}`;
}

/** The workflow bundle a worker runs: the one given, or src/workflows bundled now. */
export async function workflowCode(prebuilt?: WorkerOptions['workflowBundle']): Promise<WorkflowCode> {
  const code = !prebuilt
    ? (await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: Runtime.instance().logger })).code
    : 'code' in prebuilt
      ? prebuilt.code
      : readFileSync(prebuilt.codePath, 'utf8');
  return { bundle: { code }, buildId: buildIdOf(code) };
}
