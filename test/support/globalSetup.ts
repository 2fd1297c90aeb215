// One Temporal dev server, one workflow bundle and one SSH fleet for the whole test run.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startDevServer } from '../../src/temporal/devServer';
import { startFleet, stopFleet, type Fleet } from './fleet';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
    fleet: Fleet;
  }
}

export const FLEET_DIR = process.env.OPSFLOW_TEST_FLEET_DIR ?? '/tmp/opsflow-test-fleet';

export default async function setup(project: TestProject) {
  const fleet = startFleet({ count: 9, dir: FLEET_DIR, port: Number(process.env.OPSFLOW_TEST_FLEET_PORT ?? 2222) });
  const server = await startDevServer();
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-bundle-'));
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, '../../src/workflows/index.ts') });
  const workflowBundlePath = path.join(dir, 'workflows.js');
  writeFileSync(workflowBundlePath, code);
  project.provide('temporalAddress', server.address);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('fleet', fleet);
  return async () => {
    await server.stop();
    stopFleet(FLEET_DIR);
  };
}
