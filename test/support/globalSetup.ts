// One Temporal server, one workflow bundle and one SSH fleet for the whole test run. The server is a dev server
// (in memory), or with OPSFLOW_TEST_TEMPORAL=cluster a cluster of scripts/cluster.sh: the one OPSFLOW_CLUSTER_DIR
// names (brought up if need be, left running), else a fresh one in a temporary directory on free ports, removed
// at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startDevServer } from '../../src/temporal/devServer';
import { cluster, clusterAt, freeClusterPorts } from './clusterControl';
import { startFleet, stopFleet, type Fleet } from './fleet';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
    fleet: Fleet;
  }
}

export const FLEET_DIR = process.env.OPSFLOW_TEST_FLEET_DIR ?? '/tmp/opsflow-test-fleet';

async function startTemporal(): Promise<{ address: string; stop(): Promise<void> }> {
  const target = process.env.OPSFLOW_TEST_TEMPORAL ?? 'dev';
  if (target === 'dev') return startDevServer();
  if (target !== 'cluster') throw new Error(`OPSFLOW_TEST_TEMPORAL must be "dev" or "cluster", not "${target}"`);
  if (process.env.OPSFLOW_CLUSTER_DIR) {
    await cluster.up();
    return { address: cluster.address, stop: async () => {} };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-test-cluster-'));
  const fresh = clusterAt({ dir, ...(await freeClusterPorts()) });
  await fresh.up();
  return {
    address: fresh.address,
    async stop() {
      await fresh.down();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject) {
  const fleet = startFleet({ count: 9, dir: FLEET_DIR, port: Number(process.env.OPSFLOW_TEST_FLEET_PORT ?? 2222) });
  const server = await startTemporal();
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
