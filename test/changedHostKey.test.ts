// A host whose key changed fails every kind of run at once, without retries, naming the key it presented:
// blueGreenDeploy (h1), rollingUpgrade (h3), dataSync to an SFTP remote (h2) and the hot standby's declared
// command (h4), all at the same time, against the real sshd of each host.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunStatus } from '../src/runbook/protocol';
import { artifactsDir, makeTree, sftpConfig, writeDataInventory } from './support/data';
import { activityRuns } from './support/history';
import { knownHostsWithChangedKeys } from './support/hostKeys';
import { failureOf, startWorker, testEnv, unique, waitFor } from './support/harness';

let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
const queue = unique('hostkeys');
const art = artifactsDir('hostkeys');
const keys = () => knownHostsWithChangedKeys(['h1', 'h2', 'h3', 'h4'], path.join(art, 'known_hosts'));
let presented: Record<string, string>;

beforeAll(async () => {
  env = await testEnv();
  const changed = keys();
  presented = changed.presented;
  makeTree(path.join(art, 'files'), { small: 5, large: 0, largeMb: 0 });
  mkdirSync(path.join(art, 'deploys'));
  const infra = (extra: object) => ({ aws: 'local', environment: 'test', ...extra });
  const inventory = writeDataInventory(
    {
      aws: { local: { region: 'us-east-1' } },
      systems: {
        // Files go to an SFTP remote on h2, whose key rclone checks against the same known_hosts.
        files: { infrastructures: { blue: infra({ files: path.join(art, 'files') }), green: infra({ files: 'fleet:/tmp/opsflow-never-written' }) }, roles: { production: 'blue', standby: 'green' }, rcloneConfig: sftpConfig(path.join(art, 'rclone.conf'), changed.file) },
        // A simple hot standby release deploys to the standby (h4) first.
        standby: { infrastructures: { hk: infra({ deploy: { host: 'h5', command: ['true'] } }), eu: infra({ deploy: { host: 'h4', command: ['true'] } }) }, roles: { production: 'hk', standby: 'eu' } },
      },
    },
    {
      knownHostsFile: changed.file,
      services: {
        web: { nodes: ['h1'], blue: 'h1', release: { root: path.join(art, 'deploys'), live: path.join(art, 'current'), restart: ['true'] }, health: { url: 'http://127.0.0.1:9/health' } },
      },
    },
  );
  worker = await startWorker(env, inventory, queue);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

const start = (workflow: string, input: object) => env.client.workflow.start(workflow, { taskQueue: queue, workflowId: unique(workflow), args: [{ failure: { onFailure: 'fail' }, ...input }] });

async function approveWhenAsked(h: WorkflowHandle): Promise<void> {
  await waitFor(async () => (await h.query<RunStatus>('status')).gates.some((g) => g.state === 'open'), 'the approval gate', 60_000);
  await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
}

it('fails blueGreenDeploy, rollingUpgrade, an SFTP dataSync and a hot standby command at once, each in one attempt, naming the presented key', async () => {
  const runs = {
    h1: await start('blueGreenDeploy', { environment: 'test', service: 'web', release: { id: 'v1', git: { repo: '/nonexistent', ref: 'v1' } } }),
    h3: await start('rollingUpgrade', { environment: 'test', order: ['h3'], rollbackPlan: 'none', upgrade: { command: ['true'], sudo: false }, approval: { approvers: ['alice'] } }),
    h2: await start('dataSync', { system: 'files', stores: ['files'] }),
    h4: await start('hotStandbyRelease', { system: 'standby', release: 'v2', kind: 'simple' }),
  };
  await approveWhenAsked(runs.h3);
  for (const [host, h] of Object.entries(runs)) {
    // The run's failure names the key; its type is the refusal's, or the line's own (rollingUpgrade's HostFailed).
    const failure = await failureOf(h);
    expect(failure.message, `${h.workflowId} on ${host}`).toContain(`presented ${presented[host]}`);
    if (host !== 'h3') expect(failure.type, h.workflowId).toBe('HostKeyRejected');
    const activities = await activityRuns(h);
    // Not one activity was tried twice; the one that met the host failed for good, or reported the refusal.
    expect(activities.filter((a) => a.attempts > 1), h.workflowId).toEqual([]);
    const refused = activities.filter((a) => a.failure?.type === 'HostKeyRejected');
    if (host === 'h4') expect(refused).toEqual([]);
    else expect(refused, h.workflowId).toEqual([expect.objectContaining({ attempts: 1, outcome: 'failed', failure: expect.objectContaining({ nonRetryable: true }) })]);
  }
});
