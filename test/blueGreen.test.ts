// blueGreenDeploy and rollbackRelease on three real sshd nodes behind a real HAProxy, under steady traffic.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../src/config/inventory';
import type { BlueGreenDeployInput } from '../src/schemas/release';
import { serveInteractivity } from '../src/slack/interactivity';
import { slackClient } from '../src/slack/settings';
import type { blueGreenDeploy } from '../src/workflows/blueGreenDeploy';
import type { RunStatus } from '../src/runbook/protocol';
import type { rollbackRelease } from '../src/workflows/rollbackRelease';
import { startHaproxy, startLoad, type Haproxy, type Load } from './support/haproxy';
import { cancelledRun, failureOf, fleet, recordHistory, spawnWorker, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { startReleaseRepo, type ReleaseRepo } from './support/releaseRepo';
import { signSlackRequest, startSlackDouble } from './support/slackDouble';

const NODES = ['h1', 'h2', 'h3'];
const suffix = unique('bg');
let env: TestWorkflowEnvironment;
let haproxy: Haproxy;
let repo: ReleaseRepo;
let inventory: string;
let worker: { stop(): Promise<void> };
const queue = unique('bluegreen');

const address = (node: string) => fleet().hosts.find((h) => h.name === node)?.address as string;
const nodeDir = (node: string) => path.join(fleet().hosts.find((h) => h.name === node)?.dir as string, 'root', suffix);
const live = (node: string) => path.basename(readlinkSync(path.join(nodeDir(node), 'current')));
const lives = () => NODES.map(live);
const shared = path.join(fleet().dir, `shared-${suffix}`);

beforeAll(async () => {
  env = await testEnv();
  for (const dir of [...NODES.map(nodeDir), shared]) execFileSync('install', ['-d', '-o', 'opsflow-fleet', dir]);
  repo = await startReleaseRepo([['v1', 200], ['v2', 200], ['v3', 200], ['bad', 500]]);
  haproxy = await startHaproxy('web', NODES.map((n, i) => ({ name: `web${i + 1}`, address: address(n), port: 8080 })));
  const web = {
    nodes: NODES,
    blue: 'h1',
    release: {
      root: '{dir}/deploys',
      live: '{dir}/current',
      restart: ['sh', path.join(__dirname, 'support/webapp/ctl.sh'), '{live}', '{address}', '8080', '{dir}'],
      build: ['sh', '-c', 'echo built > BUILT'],
      smoke: ['python3', '-c', 'import ast; ast.parse(open("app.py").read())'],
      keep: 3,
    },
    health: { url: 'http://{address}:8080/health', timeout: '4s' },
    haproxy: { backend: 'web', socket: haproxy.socket, servers: { h1: 'web1', h2: 'web2', h3: 'web3' }, drainTimeout: '10s' },
  };
  inventory = writeInventory({
    hosts: Object.fromEntries(NODES.map((n) => [n, { vars: { dir: nodeDir(n) } }])),
    // The same nodes, with HAProxy's runtime API reached over SSH on h4 (socat), as on a separate balancer.
    // h1 and h2 with one release root between them, as when it sits on an NFS export both mount.
    services: { web, 'web-via-ssh': { ...web, haproxy: { ...web.haproxy, via: 'h4' } }, 'web-shared': { ...web, haproxy: undefined, nodes: ['h1', 'h2'], release: { ...web.release, root: `${shared}/deploys`, live: `${shared}/current` } } },
  });
  worker = await startWorker(env, inventory, queue);
  // The first release: no node has a previous one yet.
  const first = await deploy('v1');
  expect((await first.result()).ok).toBe(true);
});

afterAll(async () => {
  await worker?.stop();
  await haproxy?.stop();
  repo?.stop();
  for (const node of NODES) {
    const pid = Number(readFileSync(path.join(nodeDir(node), 'app.pid'), 'utf8'));
    if (pid) spawnKill(pid);
  }
  await env?.teardown();
});

function spawnKill(pid: number) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

type Deploy = WorkflowHandle<typeof blueGreenDeploy>;

function deploy(release: string, extra: Partial<BlueGreenDeployInput> = {}, taskQueue = queue): Promise<Deploy> {
  return env.client.workflow.start<typeof blueGreenDeploy>('blueGreenDeploy', {
    taskQueue,
    workflowId: unique(`deploy-${release}`),
    args: [{ environment: 'test', service: 'web', release: { id: repo.commits[release], git: { repo: repo.url, ref: repo.commits[release] } }, ...extra }],
  });
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const openGate = (h: WorkflowHandle, kind: 'approval' | 'failure') => waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open' && g.kind === kind), `an open ${kind} gate`, 60_000);

async function underLoad<T>(fn: () => Promise<T>): Promise<{ value: T; load: Awaited<ReturnType<Load['stop']>> }> {
  const load = startLoad(haproxy.url);
  try {
    const value = await fn();
    return { value, load: await load.stop() };
  } catch (err) {
    await load.stop();
    throw err;
  }
}

describe('blueGreenDeploy', () => {
  it('releases under steady traffic without one failed request, after the promote gate', async () => {
    expect(lives()).toEqual(NODES.map(() => repo.commits.v1));
    const { value: result, load } = await underLoad(async () => {
      const h = await deploy('v2', { promote: { approvers: ['alice'] } });
      const gate = await openGate(h, 'approval');
      expect(gate.id).toBe('promote');
      expect(gate.evidence).toContain('HTTP 200');
      expect(lives()).toEqual([repo.commits.v2, repo.commits.v1, repo.commits.v1]);
      await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
      const r = await h.result();
      recordHistory(h, 'blueGreenDeploy-promoted');
      return r;
    });
    expect(load.failed, load.errors.join('\n')).toBe(0);
    expect(load.ok).toBeGreaterThan(20);
    expect(load.served[0]).toBe(repo.commits.v1);
    expect(load.served[load.served.length - 1]).toBe(repo.commits.v2);
    expect(new Set(load.served)).toEqual(new Set([repo.commits.v1, repo.commits.v2]));
    expect(lives()).toEqual(NODES.map(() => repo.commits.v2));
    expect(result.previous).toEqual(Object.fromEntries(NODES.map((n) => [n, repo.commits.v1])));
    expect(result.nodes.map((n) => [n.node, n.outcome])).toEqual(NODES.map((n) => [n, 'switched']));
    expect(readFileSync(path.join(nodeDir('h2'), 'deploys', repo.commits.v2, 'BUILT'), 'utf8')).toBe('built\n');
  });

  it('a release that fails its health check on blue goes back by itself; green is never touched', async () => {
    const h = await deploy('bad');
    const { value: err, load } = await underLoad(() => failureOf(h));
    expect(err.type).toBe('HealthCheckFailed');
    expect(err.message).toContain('h1 is not healthy');
    expect(load.failed, load.errors.join('\n')).toBe(0);
    expect(lives()).toEqual(NODES.map(() => repo.commits.v2));
    // Green nodes got the release installed beside the live one, and nothing else.
    const steps = (await status(h)).steps;
    for (const green of ['h2', 'h3']) expect(steps.filter((s) => s.host === green).map((s) => s.name)).toEqual([`install ${repo.commits.bad}`]);
    expect(steps.some((s) => s.name === `undo: roll h1 back to ${repo.commits.v2}` && s.state === 'compensated')).toBe(true);
  });

  it('rejection at the promote gate puts blue back', async () => {
    const h = await deploy('v3', { promote: {} });
    await openGate(h, 'approval');
    expect(live('h1')).toBe(repo.commits.v3);
    await h.executeUpdate('reject', { args: [{ by: 'bob', reason: 'checkout page is slow' }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Rejected');
    expect(message).toContain('rejected by bob: checkout page is slow');
    expect(lives()).toEqual(NODES.map(() => repo.commits.v2));
    const steps = (await status(h)).steps;
    expect(steps.some((s) => s.name === `undo: roll h1 back to ${repo.commits.v2}` && s.state === 'compensated')).toBe(true);
    expect(steps.filter((s) => s.host === 'h2').map((s) => s.name)).toEqual([`install ${repo.commits.v3}`]);
  });

  it('a failing green node opens a failure gate: abort rolls back every switched node', async () => {
    writeFileSync(path.join(nodeDir('h3'), 'fail-restart'), '');
    try {
      const { value: err, load } = await underLoad(async () => {
        const h = await deploy('v3');
        const gate = await openGate(h, 'failure');
        expect(gate.prompt).toContain('deploy h3');
        expect(gate.evidence).toContain('restart refused');
        expect(gate.actions).toEqual(['retry', 'abort']);
        await h.executeUpdate('resolve', { args: [{ action: 'abort', by: 'alice' }] });
        return failureOf(h);
      });
      expect(err.type).toBe('Aborted');
      expect(load.failed, load.errors.join('\n')).toBe(0);
      expect(lives()).toEqual(NODES.map(() => repo.commits.v2));
    } finally {
      rmSync(path.join(nodeDir('h3'), 'fail-restart'), { force: true });
    }
  });

  it('retry at the failure gate carries on once the node is fixed', async () => {
    writeFileSync(path.join(nodeDir('h3'), 'fail-restart'), '');
    const h = await deploy('v3');
    await openGate(h, 'failure');
    rmSync(path.join(nodeDir('h3'), 'fail-restart'));
    await h.executeUpdate('resolve', { args: [{ action: 'retry', by: 'alice' }] });
    const result = await h.result();
    expect(result.ok).toBe(true);
    expect(lives()).toEqual(NODES.map(() => repo.commits.v3));
    recordHistory(h, 'blueGreenDeploy-retried');
  });

  it('re-running a completed deploy of the same release changes nothing', async () => {
    const pids = NODES.map((n) => readFileSync(path.join(nodeDir(n), 'app.pid'), 'utf8'));
    const result = await (await deploy('v3')).result();
    expect(result.nodes.map((n) => n.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(NODES.map((n) => readFileSync(path.join(nodeDir(n), 'app.pid'), 'utf8'))).toEqual(pids);
  });

  it('keeps only `keep` releases, never the live or the previous one, and tags the release in git', async () => {
    const result = await (await deploy('v1', { tag: { pattern: 'deploy-{date}-{release}' } })).result();
    expect(lives()).toEqual(NODES.map(() => repo.commits.v1));
    for (const node of NODES) {
      const kept = execFileSync('ls', [path.join(nodeDir(node), 'deploys')], { encoding: 'utf8' }).trim().split('\n').sort();
      expect(kept).toHaveLength(3);
      expect(kept).toEqual(expect.arrayContaining([repo.commits.v1, repo.commits.v3]));
    }
    expect(result.tag).toMatch(/^deploy-\d{4}-\d{2}-\d{2}-[0-9a-f]{40}$/);
    expect(execFileSync('git', ['-C', repo.bare, 'rev-parse', `${result.tag}^{commit}`], { encoding: 'utf8' }).trim()).toBe(repo.commits.v1);
  });

  it('refuses nodes whose release roots are one shared directory, naming both, before anything changes', async () => {
    const before = lives();
    const h = await deploy('v2', { service: 'web-shared', failure: { onFailure: 'fail' } });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Misconfigured');
    expect(message).toContain(`h1 and h2 have one release root (${shared})`);
    // Nothing installed, no live link, and the check's markers are gone.
    expect(readdirSync(shared)).toEqual([]);
    expect(lives()).toEqual(before);
  });

  it('a dry run lists every command per node and changes nothing', async () => {
    const before = lives();
    const result = await (await deploy('v2', { dryRun: true, promote: {} })).result();
    expect(result.plan?.map((p) => p.node)).toEqual(NODES);
    const blue = result.plan?.[0].steps.join('\n') ?? '';
    expect(blue).toContain(`mv -T ${nodeDir('h1')}/current.tmp ${nodeDir('h1')}/current`);
    expect(blue).toContain('HAProxy web/web1: drain');
    expect(blue).toContain('smoke test');
    expect(blue).toContain('gate promote');
    expect(lives()).toEqual(before);
  });

  it('refuses bad input up front: unknown service, release ids with "/" or "..", shell syntax', async () => {
    const start = (args: Record<string, unknown>) =>
      env.client.workflow.start('blueGreenDeploy', { taskQueue: queue, workflowId: unique('bad'), args: [{ environment: 'test', service: 'web', release: { id: 'v1', git: { repo: repo.url, ref: 'main' } }, ...args }] });
    const unknown = await failureOf(await start({ service: 'nope' }));
    expect(unknown.type).toBe('UnknownTarget');
    expect(unknown.message).toContain('unknown service "nope" in test (services: web, web-via-ssh, web-shared)');
    for (const id of ['../etc', 'a/b', 'x;rm -rf /', '$(reboot)', '..']) {
      const bad = await failureOf(await start({ release: { id, git: { repo: repo.url, ref: 'main' } } }));
      expect(bad.type).toBe('InvalidInput');
      expect(bad.message).toContain('release.id');
    }
    const both = await failureOf(await start({ release: { id: 'v1', tarball: '/tmp/x.tgz', git: { repo: repo.url, ref: 'main' } } }));
    expect(both.message).toContain('give exactly one of git or tarball');
    expect(existsSync(path.join(nodeDir('h1'), 'deploys', 'v1'))).toBe(false);
  });
});

describe('rollbackRelease', () => {
  it('puts every node back on the previous release, then on a named one', async () => {
    const back = await env.client.workflow.start<typeof rollbackRelease>('rollbackRelease', { taskQueue: queue, workflowId: unique('rollback'), args: [{ environment: 'test', service: 'web' }] });
    const result = await back.result();
    expect(result.nodes.map((n) => [n.node, n.from, n.to, n.outcome])).toEqual(NODES.map((n) => [n, repo.commits.v1, repo.commits.v3, 'switched']));
    expect(lives()).toEqual(NODES.map(() => repo.commits.v3));
    const named = await env.client.workflow.start<typeof rollbackRelease>('rollbackRelease', { taskQueue: queue, workflowId: unique('rollback'), args: [{ environment: 'test', service: 'web', to: repo.commits.v1 }] });
    expect((await named.result()).ok).toBe(true);
    expect(lives()).toEqual(NODES.map(() => repo.commits.v1));
    const missing = await env.client.workflow.start<typeof rollbackRelease>('rollbackRelease', { taskQueue: queue, workflowId: unique('rollback'), args: [{ environment: 'test', service: 'web', to: 'v0', failure: { onFailure: 'fail' } }] });
    expect((await failureOf(missing)).message).toContain('release v0 is not installed');
  });
});

describe('other sources and balancers', () => {
  it('installs from a tarball and drives HAProxy over SSH on another host', async () => {
    const tarball = path.join(path.dirname(repo.bare), 'v2.tar.gz');
    execFileSync('git', ['-C', repo.bare, 'archive', '--format=tar.gz', '-o', tarball, repo.commits.v2]);
    const h = await env.client.workflow.start<typeof blueGreenDeploy>('blueGreenDeploy', {
      taskQueue: queue,
      workflowId: unique('deploy-tarball'),
      args: [{ environment: 'test', service: 'web-via-ssh', release: { id: 'v2-tarball', tarball } }],
    });
    const { value: result, load } = await underLoad(() => h.result());
    expect(result.ok).toBe(true);
    expect(lives()).toEqual(NODES.map(() => 'v2-tarball'));
    expect(load.failed, load.errors.join('\n')).toBe(0);
    expect(load.served[load.served.length - 1]).toBe('v2-tarball');
    const steps = (await status(h)).steps.filter((s) => s.name === 'out of rotation');
    expect(steps.map((s) => [s.host, s.state])).toEqual(NODES.map((n) => [n, 'succeeded']));
  });
});

describe('the promote gate answered from Slack', () => {
  it('a signed Approve click on the gate message promotes the release', async () => {
    const slack = await startSlackDouble();
    const secret = unique('signing');
    const settings = { token: slack.token, signingSecret: secret, apiUrl: slack.url };
    const slackQueue = unique('bg-slack');
    const slackWorker = await startWorker(env, inventory, slackQueue, settings);
    const endpoint = await serveInteractivity({ temporal: env.client, slack: slackClient(settings), signingSecret: secret, inventory: loadInventory(inventory) }, { host: '127.0.0.1', port: 0 });
    try {
      const h = await deploy('v3', { promote: { approvers: ['slack:U0ALICE'] }, notify: { channel: 'C0DEPLOY' } }, slackQueue);
      const message = await waitFor(() => [...slack.messages.values()].find((m) => JSON.stringify(m.blocks ?? '').includes('opsflow_approve')), 'the promote gate message', 60_000);
      expect(JSON.stringify(message.blocks)).toContain('HTTP 200');
      const approve = (message.blocks as { type: string; elements?: { action_id: string; value: string }[] }[]).find((b) => b.type === 'actions')?.elements?.[0];
      const body = `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: 'U0ALICE' }, channel: { id: 'C0DEPLOY' }, actions: [approve] }))}`;
      const res = await fetch(endpoint.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackRequest(secret, body) }, body });
      expect(res.status).toBe(200);
      expect((await h.result()).ok).toBe(true);
      expect(lives()).toEqual(NODES.map(() => repo.commits.v3));
    } finally {
      await endpoint.close();
      await slackWorker.stop();
      await slack.stop();
    }
  });
});

describe('a worker killed between the blue switch and its health check', () => {
  it('finishes correctly after a restart', async () => {
    const killQueue = unique('bg-kill');
    writeFileSync(path.join(nodeDir('h1'), 'slow-restart'), '');
    let first = spawnWorker(inventory, killQueue);
    try {
      const { value: result, load } = await underLoad(async () => {
        const h = await deploy('v2', {}, killQueue);
        await waitFor(() => live('h1') === repo.commits.v2, 'the blue switch', 60_000);
        first.kill('SIGKILL');
        rmSync(path.join(nodeDir('h1'), 'slow-restart'));
        first = spawnWorker(inventory, killQueue);
        return h.result();
      });
      expect(result.ok).toBe(true);
      expect(lives()).toEqual(NODES.map(() => repo.commits.v2));
      expect(load.failed, load.errors.join('\n')).toBe(0);
      // The second worker finished the run, and announced it.
      const announced = first.output().split('\n').filter((l) => l.includes('"announce"')).map((l) => JSON.parse(l).announce);
      expect(announced).toContainEqual(expect.objectContaining({ workflow: 'blueGreenDeploy', event: 'succeeded', service: 'web', release: repo.commits.v2 }));
    } finally {
      rmSync(path.join(nodeDir('h1'), 'slow-restart'), { force: true });
      first.kill('SIGKILL');
    }
  });
});

describe('cancelling a deploy is an abort', () => {
  const everyNodeInRotation = { web1: 'UP', web2: 'UP', web3: 'UP' };
  const running = (h: WorkflowHandle, what: (s: RunStatus['steps'][number]) => boolean, label: string) =>
    waitFor(async () => (await status(h)).steps.find((s) => s.state === 'running' && what(s)), label, 60_000);

  it('at the promote gate: blue goes back by the rejection sequence, under load, and the run ends Canceled', async () => {
    const before = lives();
    const previous = before[0];
    const { value: st, load } = await underLoad(async () => {
      const h = await deploy('v3', { promote: {} });
      await openGate(h, 'approval');
      expect(live('h1')).toBe(repo.commits.v3);
      await h.cancel();
      return cancelledRun(h);
    });
    expect(load.failed, load.errors.join('\n')).toBe(0);
    expect(lives()).toEqual(before);
    expect(await haproxy.servers()).toEqual(everyNodeInRotation);
    expect(st.undo?.putBack).toEqual([`roll h1 back to ${previous}`]);
    expect(st.error).toContain(`put back: roll h1 back to ${previous}`);
    expect(st.gates.find((g) => g.id === 'promote')?.state).toBe('cancelled');
    // The same drain / switch / restart / health / back sequence as a rejection, after the undo step began.
    const undo = st.steps.findIndex((s) => s.name === `undo: roll h1 back to ${previous}`);
    expect(st.steps.slice(undo + 1).map((s) => s.name)).toEqual(['out of rotation', `switch to ${previous}`, 'restart', 'health check', 'back in rotation']);
  });

  it('while blue is drained (a slow restart): the undo waits for the restart, and a second cancel does not stop it', async () => {
    const before = lives();
    const previous = before[0];
    writeFileSync(path.join(nodeDir('h1'), 'slow-restart'), '');
    try {
      const { value: st, load } = await underLoad(async () => {
        const h = await deploy('v3');
        await running(h, (s) => s.host === 'h1' && s.name === 'restart', 'the blue restart');
        await h.cancel();
        await waitFor(async () => {
          const steps = (await status(h)).steps;
          const undo = steps.findIndex((s) => s.name.startsWith('undo: '));
          return undo >= 0 && steps.slice(undo).find((s) => s.name === 'restart' && s.state === 'running');
        }, 'the undo restart', 60_000);
        // A second request while undoing: the undo runs in a scope no cancel reaches.
        await h.cancel().catch(() => undefined);
        return cancelledRun(h);
      });
      expect(load.failed, load.errors.join('\n')).toBe(0);
      expect(lives()).toEqual(before);
      expect(await haproxy.servers()).toEqual(everyNodeInRotation);
      expect(st.undo?.putBack).toEqual([`roll h1 back to ${previous}`]);
      for (const green of ['h2', 'h3']) expect(st.steps.filter((s) => s.host === green).map((s) => s.name)).toEqual([`install ${repo.commits.v3}`]);
    } finally {
      rmSync(path.join(nodeDir('h1'), 'slow-restart'), { force: true });
    }
  });

  it('a cancel after every node is healthy (committed) rolls nothing back, and the status says so', async () => {
    const hold = path.join(path.dirname(repo.bare), 'hold-tag');
    const hook = path.join(repo.bare, 'hooks', 'pre-receive');
    writeFileSync(hold, '');
    writeFileSync(hook, `#!/bin/sh\nwhile [ -e '${hold}' ]; do sleep 0.1; done\n`);
    chmodSync(hook, 0o755);
    try {
      const h = await deploy('v3', { tag: { pattern: 'late-cancel-{release}' } });
      await running(h, (s) => s.name.startsWith('tag '), 'the tag step');
      await h.cancel();
      rmSync(hold);
      const st = await cancelledRun(h);
      expect(st.undo).toMatchObject({ committed: true, putBack: [] });
      expect(st.error).toContain('the run had committed its change (every node or host done and healthy), so nothing was rolled back');
      expect(lives()).toEqual(NODES.map(() => repo.commits.v3));
      expect(await haproxy.servers()).toEqual(everyNodeInRotation);
    } finally {
      rmSync(hold, { force: true });
      rmSync(hook, { force: true });
    }
  });

  const rollback = (extra: Record<string, unknown> = {}) =>
    env.client.workflow.start<typeof rollbackRelease>('rollbackRelease', { taskQueue: queue, workflowId: unique('rollback'), args: [{ environment: 'test', service: 'web', ...extra }] });

  it('rollbackRelease cancelled at its gate changes nothing', async () => {
    const before = lives();
    const h = await rollback({ approval: {} });
    await openGate(h, 'approval');
    await h.cancel();
    const st = await cancelledRun(h);
    expect(st.undo?.putBack).toEqual([]);
    expect(st.error).toContain('nothing to put back');
    expect(lives()).toEqual(before);
  });

  it('rollbackRelease aborted at a failing node puts the nodes it switched back too', async () => {
    const before = lives();
    writeFileSync(path.join(nodeDir('h3'), 'fail-restart'), '');
    try {
      const h = await rollback();
      await openGate(h, 'failure');
      // The node can restart again by the time someone aborts: its own undo then succeeds too.
      rmSync(path.join(nodeDir('h3'), 'fail-restart'));
      await h.executeUpdate('resolve', { args: [{ action: 'abort', by: 'alice' }] });
      expect((await failureOf(h)).type).toBe('Aborted');
      expect((await status(h)).undo?.putBack).toEqual([`roll h3 back to ${before[2]}`, `roll h2 back to ${before[1]}`, `roll h1 back to ${before[0]}`]);
    } finally {
      rmSync(path.join(nodeDir('h3'), 'fail-restart'), { force: true });
    }
    expect(lives()).toEqual(before);
    expect(await haproxy.servers()).toEqual(everyNodeInRotation);
  });

  it('rollbackRelease cancelled mid-switch puts the switched nodes back where they were, under load', async () => {
    const before = lives();
    writeFileSync(path.join(nodeDir('h2'), 'slow-restart'), '');
    try {
      const { value: st, load } = await underLoad(async () => {
        const h = await rollback();
        await running(h, (s) => s.host === 'h2' && s.name === 'restart', 'the restart of h2');
        expect(live('h1')).not.toBe(before[0]);
        await h.cancel();
        return cancelledRun(h);
      });
      expect(load.failed, load.errors.join('\n')).toBe(0);
      expect(lives()).toEqual(before);
      expect(await haproxy.servers()).toEqual(everyNodeInRotation);
      expect(st.undo?.putBack).toEqual([`roll h2 back to ${before[1]}`, `roll h1 back to ${before[0]}`]);
      expect(st.steps.some((s) => s.host === 'h3')).toBe(false);
    } finally {
      rmSync(path.join(nodeDir('h2'), 'slow-restart'), { force: true });
    }
  });
});
