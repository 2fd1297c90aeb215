// A step whose declared timeout is longer than any shared allowance: an upgrade command that runs for more than
// six minutes, with `timeout: 10m`, succeeds in one attempt. The one long test of the suite, alone in its file so
// it runs beside the others.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RollingUpgradeInput } from '../src/schemas/rollingUpgrade';
import type { rollingUpgrade } from '../src/workflows/rollingUpgrade';
import { activityRuns } from './support/history';
import { startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

const RUN_SECONDS = 370;
let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
const queue = unique('long');

beforeAll(async () => {
  env = await testEnv();
  worker = await startWorker(env, writeInventory(), queue);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

it(`runs a ${RUN_SECONDS} s upgrade declared with timeout 10m to the end, in one attempt`, async () => {
  const input: RollingUpgradeInput = {
    environment: 'test',
    order: ['h6'],
    rollbackPlan: 'none needed',
    upgrade: { command: ['sleep', String(RUN_SECONDS)], sudo: false, timeout: '10m' },
    approval: { approvers: ['alice'] },
  };
  const h = await env.client.workflow.start<typeof rollingUpgrade>('rollingUpgrade', { taskQueue: queue, workflowId: unique('long-upgrade'), args: [input] });
  await waitFor(async () => (await h.query<{ gates: { state: string }[] }>('status')).gates.some((g) => g.state === 'open'), 'the approval gate', 60_000);
  await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
  const result = await h.result();
  expect(result.upgraded).toEqual(['h6']);
  const upgrade = (await activityRuns(h)).filter((a) => a.type === 'runOnHosts');
  expect(upgrade).toHaveLength(1);
  expect(upgrade[0]).toMatchObject({ attempts: 1, outcome: 'completed' });
  // The allowance comes from the declared 10 minutes, and a dead worker would still be noticed in seconds.
  expect(upgrade[0].startToCloseMs).toBeGreaterThan(10 * 60_000);
  expect(upgrade[0].heartbeatMs).toBeLessThanOrEqual(20_000);
}, 15 * 60_000);
