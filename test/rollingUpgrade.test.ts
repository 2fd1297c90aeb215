// rollingUpgrade on fleet hosts h7-h9, which these tests reboot: a host's "reboot" restarts its sshd with a new
// boot id (test/fleet/fleet.sh restart-host), and can be made to come back late or never. A real memcached
// stands for the service checked before and after.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CancelledFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RollingUpgradeInput } from '../src/schemas/rollingUpgrade';
import type { RunStatus } from '../src/runbook/protocol';
import type { rollingUpgrade } from '../src/workflows/rollingUpgrade';
import { fleetHome, fleetScript, type FleetHost } from './support/fleet';
import { cancelledRun, failureOf, fleet, freePort, portOpen, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { startHaproxy, type Haproxy } from './support/haproxy';

const HOSTS = ['h7', 'h8', 'h9'];
let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
let memcached: ChildProcess;
let memcachedPort: number;
let powerSwitch: NodeJS.Timeout;
const queue = unique('upgrade');
const logDir = mkdtempSync(path.join(tmpdir(), 'opsflow-upgrade-'));
/** Hosts that go down at their reboot and do not come back. */
const neverReturn = new Set<string>();

const host = (name: string) => fleet().hosts.find((h) => h.name === name) as FleetHost;
const file = (name: string, f: string) => path.join(host(name).dir, 'root', f);
const bootId = (name: string) => readFileSync(path.join(host(name).dir, 'boot_id'), 'utf8').trim();

beforeAll(async () => {
  chmodSync(logDir, 0o777);
  env = await testEnv();
  memcachedPort = await freePort();
  memcached = spawn('memcached', ['-l', '127.0.0.1', '-p', String(memcachedPort), '-m', '64', '-U', '0', '-u', 'nobody'], { stdio: 'ignore' });
  await waitFor(() => portOpen(memcachedPort), 'memcached');
  worker = await startWorker(env, writeInventory({ hosts: Object.fromEntries(HOSTS.map((h) => [h, { address: host(h).address }])) }), queue);
  // The hosts' "reboot" leaves a request; this plays the power switch.
  powerSwitch = setInterval(() => {
    for (const h of HOSTS) {
      if (!existsSync(file(h, 'reboot-requested'))) continue;
      rmSync(file(h, 'reboot-requested'));
      if (neverReturn.has(h)) fleetScript('stop-host', h, '--dir', fleet().dir);
      else fleetScript('restart-host', h, '--dir', fleet().dir, '--down-seconds', '1');
    }
  }, 100);
});

afterAll(async () => {
  clearInterval(powerSwitch);
  for (const h of HOSTS) fleetScript('start-host', h, '--dir', fleet().dir);
  await worker?.stop();
  memcached?.kill();
  await env?.teardown();
});

function start(input: Partial<RollingUpgradeInput>, id = unique('upgrade')): Promise<WorkflowHandle<typeof rollingUpgrade>> {
  const log = path.join(logDir, `${id}.log`);
  return env.client.workflow.start<typeof rollingUpgrade>('rollingUpgrade', {
    taskQueue: queue,
    workflowId: id,
    args: [
      {
        environment: 'test',
        order: HOSTS,
        rollbackPlan: 'reinstall the previous packages',
        // {root}: the host's own directory (the fleet's hosts share one home); the boot id comes from the
        // inventory's bootIdFile, the default bootIdCommand.
        upgrade: { command: ['sh', '-c', `test ! -e "{root}/fail-upgrade" && echo "{node}" >> ${log} && echo done > "{root}/upgraded-${id}"`], sudo: false },
        reboot: { command: ['touch', '{root}/reboot-requested'], sudo: false, timeout: '8s' },
        packages: ['dash'],
        checks: [
          { kind: 'memcached', host: '127.0.0.1', port: memcachedPort, version: { atLeast: '1.5' }, memoryLimitMb: 64 },
          { kind: 'tcp', port: host('h7').port },
          { kind: 'command', command: ['test', '-d', '/tmp'] },
        ],
        approval: { approvers: ['alice'] },
        ...input,
      } as RollingUpgradeInput,
    ],
  });
}

const upgradedLog = (h: WorkflowHandle) => readFileSync(path.join(logDir, `${h.workflowId}.log`), 'utf8').trim().split('\n').filter(Boolean);
const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const openGate = (h: WorkflowHandle, kind: 'approval' | 'failure') => waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open' && g.kind === kind), `an open ${kind} gate`, 60_000);

describe('rollingUpgrade', () => {
  it('waits for a thumbs-up, then upgrades, reboots and checks each host in the given order', async () => {
    const before = Object.fromEntries(HOSTS.map((h) => [h, bootId(h)]));
    const h = await start({ order: ['h8', 'h7', 'h9'] });
    const gate = await openGate(h, 'approval');
    expect(gate.evidence).toContain('Rollback plan:\nreinstall the previous packages');
    expect(existsSync(path.join(logDir, `${h.workflowId}.log`))).toBe(false);
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    const result = await h.result();
    expect(result.upgraded).toEqual(['h8', 'h7', 'h9']);
    expect(upgradedLog(h)).toEqual(['h8', 'h7', 'h9']);
    for (const name of HOSTS) expect(bootId(name)).not.toBe(before[name]);
    const note = result.notes.find((n) => n.host === 'h8');
    expect(note).toMatchObject({ rebooted: true, osBefore: expect.stringContaining('Debian') });
    expect(note?.packages.dash.before).toMatch(/^\d/);
    expect(note?.checks.map((c) => c.ok)).toEqual([true, true, true]);
    expect(note?.checks[0].detail).toMatch(/64 MB, set\/get ok/);
  });

  it('stops the line at a host that does not come back; abort leaves the later hosts untouched', async () => {
    neverReturn.add('h8');
    try {
      const h = await start({ order: ['h7', 'h8', 'h9'] });
      await openGate(h, 'approval');
      await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
      const gate = await openGate(h, 'failure');
      expect(gate.evidence).toContain('h8 did not come back');
      await h.executeUpdate('resolve', { args: [{ action: 'abort', by: 'alice' }] });
      const { type, message } = await failureOf(h);
      expect(type).toBe('Aborted');
      expect(message).toContain('upgraded: h7; skipped: none; failed: h8; untouched: h9');
      expect(existsSync(file('h9', `upgraded-${h.workflowId}`))).toBe(false);
    } finally {
      neverReturn.delete('h8');
      fleetScript('start-host', 'h8', '--dir', fleet().dir);
    }
  });

  it('skip at the failure gate goes on with the next host', async () => {
    writeFileSync(file('h8', 'fail-upgrade'), '');
    try {
      const h = await start({ order: ['h7', 'h8', 'h9'], reboot: undefined });
      await openGate(h, 'approval');
      await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
      await openGate(h, 'failure');
      await h.executeUpdate('resolve', { args: [{ action: 'skip', by: 'alice' }] });
      const result = await h.result();
      expect(result).toMatchObject({ ok: false, upgraded: ['h7', 'h9'], skipped: ['h8'] });
      expect(upgradedLog(h)).toEqual(['h7', 'h9']);
    } finally {
      rmSync(file('h8', 'fail-upgrade'), { force: true });
    }
  });

  it('a memcached check with the wrong memory limit fails the pre-check, before anything changes', async () => {
    const h = await start({ checks: [{ kind: 'memcached', host: '127.0.0.1', port: memcachedPort, memoryLimitMb: 128, setGet: true }], failure: { onFailure: 'fail' } });
    await openGate(h, 'approval');
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    const { message } = await failureOf(h);
    expect(message).toContain('memory limit 64 MB, want 128 MB (-m)');
    expect(message).toContain('upgraded: none');
    expect(existsSync(path.join(logDir, `${h.workflowId}.log`))).toBe(false);
  });

  it('rejection upgrades nothing', async () => {
    const h = await start({});
    await openGate(h, 'approval');
    await h.executeUpdate('reject', { args: [{ by: 'alice', reason: 'release freeze' }] });
    expect((await failureOf(h)).type).toBe('Rejected');
    expect(existsSync(path.join(logDir, `${h.workflowId}.log`))).toBe(false);
  });

  it('refuses bad input: an unknown host in the order, an empty rollback plan, a host twice', async () => {
    const unknown = await failureOf(await start({ order: ['h7', 'nope'] }));
    expect(unknown).toMatchObject({ type: 'UnknownTarget', message: expect.stringContaining('unknown host(s) in test: nope') });
    const empty = await failureOf(await start({ rollbackPlan: '   ' }));
    expect(empty.type).toBe('InvalidInput');
    expect(empty.message).toContain('rollbackPlan: required');
    expect((await failureOf(await start({ order: ['h7', 'h7'] }))).message).toContain('a host appears twice');
  });

  it('passes shell syntax in the upgrade command as one literal argument, and names the host in {node}', async () => {
    const text = '; touch "$HOME/opsflow-pwned" $(touch /tmp/opsflow-pwned) `reboot`';
    const h = await start({ order: ['h7'], reboot: undefined, checks: [], upgrade: { command: ['sh', '-c', 'printf %s "$3" > "$2/arg-$1"', 'upgrade', '{node}', '{root}', text], sudo: false } });
    await openGate(h, 'approval');
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    expect((await h.result()).upgraded).toEqual(['h7']);
    expect(readFileSync(file('h7', 'arg-h7'), 'utf8')).toBe(text);
    expect(existsSync(path.join(fleetHome(), 'opsflow-pwned'))).toBe(false);
    expect(existsSync('/tmp/opsflow-pwned')).toBe(false);
  });

  it('a dry run lists the steps per host and touches nothing', async () => {
    const h = await start({ dryRun: true });
    const result = await h.result();
    expect(result.plan?.map((p) => p.host)).toEqual(HOSTS);
    expect(result.plan?.[0].steps.join('\n')).toContain('reboot: touch');
    expect(execFileSync('ls', [path.join(host('h7').dir, 'root')], { encoding: 'utf8' })).not.toContain(`upgraded-${h.workflowId}`);
  });
});

describe('rollingUpgrade behind HAProxy: a cancel or an abort puts the host back', () => {
  // h7-h9 behind a real HAProxy (a health endpoint on each host's address), so the line takes hosts out of
  // rotation; a worker of its own reads that inventory.
  const balancedQueue = unique('upgrade-lb');
  let haproxy: Haproxy;
  let balancedWorker: { stop(): Promise<void> };
  const healthServers: ChildProcess[] = [];
  const HEALTH = 'import http.server as h, sys\nclass H(h.BaseHTTPRequestHandler):\n  def do_GET(s): s.send_response(200); s.end_headers()\n  def log_message(s, *a): pass\nh.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()';

  beforeAll(async () => {
    const port = await freePort();
    for (const h of HOSTS) healthServers.push(spawn('python3', ['-c', HEALTH, host(h).address, String(port)], { stdio: 'ignore' }));
    haproxy = await startHaproxy('svc', HOSTS.map((h) => ({ name: h, address: host(h).address, port })));
    await waitFor(async () => Object.values(await haproxy.servers()).every((st) => st === 'UP'), 'every server UP in HAProxy');
    const svc = {
      nodes: HOSTS,
      blue: 'h7',
      release: { root: '{root}/svc', live: '{root}/svc/current', restart: ['true'] },
      health: { url: `http://{address}:${port}/health` },
      haproxy: { backend: 'svc', socket: haproxy.socket, drainTimeout: '5s' },
    };
    balancedWorker = await startWorker(env, writeInventory({ hosts: Object.fromEntries(HOSTS.map((h) => [h, { address: host(h).address }])), services: { svc } }), balancedQueue);
  });

  afterAll(async () => {
    await balancedWorker?.stop();
    await haproxy?.stop();
    for (const p of healthServers) p.kill();
  });

  /** A line h7, h8, h9 on the balanced hosts, approved; `onH8` is what the upgrade does on h8 (sh, $1 = tag). */
  async function balancedLine(onH8: string, tag: string, checks: RollingUpgradeInput['checks']): Promise<WorkflowHandle<typeof rollingUpgrade>> {
    const h = await env.client.workflow.start<typeof rollingUpgrade>('rollingUpgrade', {
      taskQueue: balancedQueue,
      workflowId: unique('upgrade-lb'),
      args: [
        {
          environment: 'test',
          order: HOSTS,
          rollbackPlan: 'none needed',
          upgrade: { command: ['sh', '-c', `if [ "$0" = h8 ]; then ${onH8}; fi`, '{node}', tag], sudo: false },
          packages: [],
          checks,
          checksTimeout: '2s',
          approval: { approvers: ['alice'] },
        } as RollingUpgradeInput,
      ],
    });
    await openGate(h, 'approval');
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    return h;
  }

  /** A line whose upgrade on h8 runs until it is stopped; returns once it runs. */
  async function cancellableLine(tag: string, checks: RollingUpgradeInput['checks']): Promise<WorkflowHandle<typeof rollingUpgrade>> {
    const h = await balancedLine('exec sleep "$1"', tag, checks);
    await waitFor(() => spawnSync('pgrep', ['-f', `sleep ${tag}`]).status === 0, 'the upgrade on h8', 60_000);
    expect(await haproxy.servers()).toEqual({ h7: 'UP', h8: 'MAINT', h9: 'UP' });
    return h;
  }

  it('abort at a failure gate puts the failed host back in rotation the same way, its checks passing', async () => {
    const h = await balancedLine('echo "no space left" >&2; exit 1', 'x', [{ kind: 'tcp', port: host('h7').port }]);
    await openGate(h, 'failure');
    expect((await haproxy.servers()).h8).toBe('MAINT');
    await h.executeUpdate('resolve', { args: [{ action: 'abort', by: 'alice' }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Aborted');
    expect(message).toContain('upgraded: h7; skipped: none; failed: h8; untouched: h9');
    expect(await haproxy.servers()).toEqual({ h7: 'UP', h8: 'UP', h9: 'UP' });
    expect((await status(h)).undo?.putBack).toEqual(['put h8 back in svc once its checks pass']);
  });

  it('stops the upgrade command, puts the host back in rotation once its checks pass, and says where the line stood', async () => {
    const tag = `${Math.floor(Math.random() * 1e6)}.5`;
    const h = await cancellableLine(tag, [{ kind: 'tcp', port: host('h7').port }]);
    await h.cancel();
    const st = await cancelledRun(h);
    expect(spawnSync('pgrep', ['-f', `sleep ${tag}`]).status).toBe(1);
    expect(await haproxy.servers()).toEqual({ h7: 'UP', h8: 'UP', h9: 'UP' });
    expect(st.undo?.putBack).toEqual(['put h8 back in svc once its checks pass']);
    expect(st.error).toContain('upgraded: h7; skipped: none; interrupted: h8; untouched: h9');
    expect(st.steps.some((s) => s.host === 'h9')).toBe(false);
  });

  it('leaves a host whose checks fail out of rotation, and the status says it was not put back', async () => {
    const tag = `${Math.floor(Math.random() * 1e6)}.5`;
    const broken = file('h8', `broken-${tag}`);
    const h = await cancellableLine(tag, [{ kind: 'command', command: ['sh', '-c', 'test ! -e "$0"', broken] }]);
    writeFileSync(broken, '');
    try {
      await h.cancel();
      const err = await h.result().then(() => undefined, (e: unknown) => e);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      const st = await status(h);
      expect(st.state).toBe('cancelled');
      expect(st.undo?.putBack).toEqual([]);
      expect(st.undo?.notPutBack).toEqual([expect.stringContaining('put h8 back in svc once its checks pass: ')]);
      expect(st.error).toContain('NOT put back: put h8 back in svc');
      expect((await haproxy.servers()).h8).toBe('MAINT');
    } finally {
      rmSync(broken, { force: true });
    }
  });
});
