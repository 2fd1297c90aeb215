// The worker's cache cap (OPSFLOW_WORKER_CACHE / --max-cached-workflows): with more runs parked at gates than it
// keeps in memory, the runs it evicted still answer their gate (by replaying their history) and finish.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunStatus } from '../src/runbook/protocol';
import type { fleetRun } from '../src/workflows/fleetRun';
import { loadInventory } from '../src/config/inventory';
import { createOpsWorker, parseCacheSize } from '../src/workers/worker';
import { DEFAULT_MAX_CACHED_WORKFLOWS, WORKFLOW_TASK_SLOTS } from '../src/workers/workflowMemory';
import { spawnWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

let env: TestWorkflowEnvironment;
let inventory: string;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  env = await testEnv();
  inventory = writeInventory();
});
afterEach(() => {
  for (const w of workers.splice(0)) if (w.exitCode === null) w.kill('SIGKILL');
});
afterAll(async () => env?.teardown());

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');

describe('the worker cache cap', () => {
  it('runs past the cap answer their gate and finish', async () => {
    const queue = unique('cache');
    workers.push(spawnWorker(inventory, queue, { OPSFLOW_WORKER_CACHE: '2' }));
    const handles = await Promise.all(
      ['h1', 'h2', 'h3', 'h1', 'h2'].map((host) =>
        env.client.workflow.start<typeof fleetRun>('fleetRun', { taskQueue: queue, workflowId: unique('cache'), args: [{ environment: 'test', target: { hosts: [host] }, command: ['true'], approval: { approvers: ['alice'] } }] }),
      ),
    );
    for (const h of handles) await waitFor(async () => (await status(h)).state === 'waiting', 'the gate to open', 60_000);
    // Five parked runs, two cached: the first ones queried were evicted since.
    for (const h of handles) await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    for (const h of handles) expect((await h.result()).ok).toBe(true);
  });

  it('caps the cache and the workflow tasks it takes at once by default, the cache as docs/operations.md says', async () => {
    const { worker, ssh } = await createOpsWorker({ connection: env.nativeConnection, namespace: 'default', inventory: loadInventory(inventory), taskQueue: unique('defaults'), workflowBundle: { codePath: inject('workflowBundlePath') } });
    const running = worker.run();
    worker.shutdown();
    await running;
    await ssh.closeAll();
    expect(worker.options.maxCachedWorkflows).toBe(DEFAULT_MAX_CACHED_WORKFLOWS);
    expect(worker.options.tuner.workflowTaskSlotSupplier).toMatchObject({ type: 'fixed-size', numSlots: WORKFLOW_TASK_SLOTS });
    const row = readFileSync(path.join(__dirname, '../docs/operations.md'), 'utf8').split('\n').find((l) => l.startsWith('| `OPSFLOW_WORKER_CACHE` |'));
    expect(row).toContain(`| \`${DEFAULT_MAX_CACHED_WORKFLOWS}\` |`);
  });

  it('refuses a cache size that is not a whole number, naming the setting', () => {
    expect(parseCacheSize('300', 'OPSFLOW_WORKER_CACHE')).toBe(300);
    expect(parseCacheSize('0', '--max-cached-workflows')).toBe(0);
    for (const bad of ['lots', '-1', '2.5', '']) expect(() => parseCacheSize(bad, 'OPSFLOW_WORKER_CACHE')).toThrow(/OPSFLOW_WORKER_CACHE: expected a whole number/);
  });
});
