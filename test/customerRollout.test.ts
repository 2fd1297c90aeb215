// customerRollout: one release for several customers, each a service of the inventory in a staging and a
// production environment (fleet hosts h4 and h5), deployed by real child blueGreenDeploy runs: git clone from a
// real git daemon, the test web service restarted, its health checked over HTTP.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { CustomerRolloutInput } from '../src/schemas/customerRollout';
import type { customerRollout } from '../src/workflows/customerRollout';
import type { RunStatus } from '../src/runbook/protocol';
import { FLEET_USER } from './support/fleet';
import { cancelledRun, failureOf, fleet, freePort, hostFile, recordHistory, startWorker, testEnv, unique, waitFor } from './support/harness';
import { startReleaseRepo, type ReleaseRepo } from './support/releaseRepo';

const CUSTOMERS = ['acme', 'globex', 'initech'];
const STAGES = { staging: 'h4', production: 'h5' } as const;
type Stage = keyof typeof STAGES;
const suffix = unique('rollout');
let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
let repo: ReleaseRepo;
const queue = unique('rollout');
const urls: Record<Stage, Record<string, string>> = { staging: {}, production: {} };

const dir = (stage: Stage, customer: string) => hostFile(STAGES[stage], path.join(suffix, customer));
const live = (stage: Stage, customer: string) => {
  const link = path.join(dir(stage, customer), 'current');
  return existsSync(link) ? path.basename(readlinkSync(link)) : null;
};

beforeAll(async () => {
  env = await testEnv();
  repo = await startReleaseRepo([
    ['v1', 200],
    ['v2', 200],
    ['v3', 200],
  ]);
  const f = fleet();
  const environments: Record<string, unknown> = {};
  for (const stage of Object.keys(STAGES) as Stage[]) {
    const node = STAGES[stage];
    const services: Record<string, unknown> = {};
    for (const customer of CUSTOMERS) {
      const d = dir(stage, customer);
      execFileSync('install', ['-d', '-o', FLEET_USER, d]);
      const port = String(await freePort());
      urls[stage][customer] = `http://${f.hosts.find((h) => h.name === node)?.address}:${port}/`;
      services[customer] = {
        nodes: [node],
        blue: node,
        release: { root: `${d}/deploys`, live: `${d}/current`, restart: ['sh', path.join(__dirname, 'support/webapp/ctl.sh'), '{live}', '{address}', port, d], keep: 3 },
        health: { url: `http://{address}:${port}/health`, timeout: '4s' },
      };
    }
    environments[stage] = { hosts: { [node]: { address: f.hosts.find((h) => h.name === node)?.address } }, services };
  }
  const inventory = path.join(mkdtempSync(path.join(tmpdir(), 'opsflow-inv-')), 'inventory.yaml');
  writeFileSync(inventory, stringify({ knownHosts: f.knownHostsFile, defaults: { user: f.user, port: f.hosts[0].port, identityFile: f.identityFile }, environments }));
  worker = await startWorker(env, inventory, queue);
});

afterAll(async () => {
  await worker?.stop();
  repo?.stop();
  for (const stage of Object.keys(STAGES) as Stage[]) {
    for (const customer of CUSTOMERS) {
      try {
        process.kill(Number(readFileSync(path.join(dir(stage, customer), 'app.pid'), 'utf8')), 'SIGTERM');
      } catch {
        // never started
      }
    }
  }
  await env?.teardown();
});

function start(release: string, input: Partial<CustomerRolloutInput> = {}, workflowId = unique('rollout')): Promise<WorkflowHandle<typeof customerRollout>> {
  return env.client.workflow.start<typeof customerRollout>('customerRollout', {
    taskQueue: queue,
    workflowId,
    args: [{ release: { id: repo.commits[release], git: { repo: repo.url, ref: repo.commits[release] } }, customers: CUSTOMERS, promote: { approvers: ['alice'] }, ...input }],
  });
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const openGate = (h: WorkflowHandle) => waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open'), 'an open gate', 90_000);

/** The most child deploys that ran at the same time, from the run's own step records. */
function mostAtOnce(steps: RunStatus['steps']): number {
  const edges = steps.filter((s) => s.name.includes(': deploy')).flatMap((s) => [[Date.parse(s.startedAt), 1], [Date.parse(s.endedAt as string), -1]] as const);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (running += d));
  return most;
}

describe('customerRollout', () => {
  it('staging for every customer, one gate, then production; a customer that fails does not stop the others', async () => {
    writeFileSync(path.join(dir('staging', 'globex'), 'fail-restart'), '');
    try {
      const v1 = repo.commits.v1;
      // Named as its recorded history: the replay test replays it under that name, and child ids derive from it.
      const h = await start('v1', { concurrency: 2 }, 'customerRollout-one-failed');
      const gate = await openGate(h);
      expect(gate.id).toBe('promote');
      expect(gate.prompt).toContain('promote acme, initech to production?');
      expect(gate.evidence).toContain('acme: succeeded');
      expect(gate.evidence).toMatch(/globex: failed \(restart on h4 failed/);
      expect([live('staging', 'acme'), live('staging', 'initech')]).toEqual([v1, v1]);
      // Production waits for the gate.
      expect(CUSTOMERS.map((c) => live('production', c))).toEqual([null, null, null]);
      await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
      const result = await h.result();
      expect(result.ok).toBe(false);
      expect(result.customers.map((o) => [o.customer, o.staging.state, o.production.state])).toEqual([
        ['acme', 'succeeded', 'succeeded'],
        ['globex', 'failed', 'skipped'],
        ['initech', 'succeeded', 'succeeded'],
      ]);
      expect(result.customers[0].production.workflowId).toBe(`${h.workflowId}/production/acme`);
      expect(CUSTOMERS.map((c) => live('production', c))).toEqual([v1, null, v1]);
      expect(await (await fetch(urls.production.acme)).text()).toBe(v1);
      expect(mostAtOnce((await status(h)).steps)).toBeLessThanOrEqual(2);
      recordHistory(h, 'customerRollout-one-failed');
    } finally {
      rmSync(path.join(dir('staging', 'globex'), 'fail-restart'), { force: true });
    }
  });

  it('stopOnFailure: after the first failed customer no other starts, and there is no gate', async () => {
    writeFileSync(path.join(dir('staging', 'globex'), 'fail-restart'), '');
    try {
      const h = await start('v2', { customers: ['globex', 'acme', 'initech'], concurrency: 1, stopOnFailure: true });
      const { type, message } = await failureOf(h);
      expect(type).toBe('CustomerFailed');
      expect(message).toContain('globex: staging failed');
      expect(message).toContain('acme: staging not-started, production not-started');
      expect((await status(h)).gates).toEqual([]);
      expect(existsSync(path.join(dir('staging', 'acme'), 'deploys', repo.commits.v2))).toBe(false);
      expect(live('staging', 'acme')).toBe(repo.commits.v1);
    } finally {
      rmSync(path.join(dir('staging', 'globex'), 'fail-restart'), { force: true });
    }
  });

  it('a rejection at the gate leaves production untouched', async () => {
    const h = await start('v2', { customers: ['acme'] });
    await openGate(h);
    expect(live('staging', 'acme')).toBe(repo.commits.v2);
    await h.executeUpdate('reject', { args: [{ by: 'alice', reason: 'customer asked to wait' }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Rejected');
    expect(message).toContain('production is untouched');
    expect(live('production', 'acme')).toBe(repo.commits.v1);
  });

  it('refuses an unknown customer and a single environment for both stages before anything runs; plans on request', async () => {
    const unknown = await failureOf(await start('v2', { customers: ['acme', 'nope'] }));
    expect(unknown).toMatchObject({ type: 'UnknownTarget', message: expect.stringContaining('unknown service "nope" in staging') });
    const same = await failureOf(await start('v2', { stages: { staging: 'production', production: 'production' } }));
    expect(same.message).toContain('stages: staging and production must be different environments');
    const plan = await (await start('v2', { dryRun: true })).result();
    expect(plan.plan?.map((p) => [p.customer, p.staging.length, p.production.length])).toEqual(CUSTOMERS.map((c) => [c, 1, 1]));
    expect(live('staging', 'acme')).toBe(repo.commits.v2);
  });
});

describe('customerRollout cancelled', () => {
  it('cancels the deploys in flight; each puts its node back before the rollout ends Canceled', async () => {
    const customers = ['acme', 'initech'];
    // Staging on v1 first (a rollout stopped at its gate), so each deploy below has a release to go back to.
    const first = await start('v1', { customers });
    await openGate(first);
    await first.executeUpdate('reject', { args: [{ by: 'alice', reason: 'staging only' }] });
    await failureOf(first);
    const before = customers.map((c) => live('staging', c));
    expect(before).toEqual([repo.commits.v1, repo.commits.v1]);
    for (const c of customers) writeFileSync(path.join(dir('staging', c), 'slow-restart'), '');
    try {
      const h = await start('v3', { customers, concurrency: 2 });
      const children = customers.map((c) => env.client.workflow.getHandle(`${h.workflowId}/staging/${c}`));
      for (const child of children) {
        await waitFor(async () => (await status(child).catch(() => undefined))?.steps.find((s) => s.name === 'restart' && s.state === 'running'), `the restart in ${child.workflowId}`, 90_000);
      }
      await h.cancel();
      const st = await cancelledRun(h);
      // The rollout ended only after its deploys had undone their changes and ended.
      for (const child of children) expect((await child.describe()).status.name).toBe('CANCELLED');
      for (const [i, child] of children.entries()) {
        const childStatus = await cancelledRun(child);
        expect(childStatus.undo?.putBack).toEqual([`roll h4 back to ${before[i]}`]);
      }
      expect(customers.map((c) => live('staging', c))).toEqual(before);
      expect(st.error).toContain('acme: staging cancelled, production not-started; initech: staging cancelled, production not-started');
      expect(CUSTOMERS.map((c) => live('production', c))).not.toContain(repo.commits.v3);
    } finally {
      for (const c of customers) rmSync(path.join(dir('staging', c), 'slow-restart'), { force: true });
    }
  });
});
