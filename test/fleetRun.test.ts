// fleetRun against real sshd hosts on loopback and a real Temporal dev server.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { workflowMetadataQuery } from '@temporalio/workflow';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetRunInput } from '../src/schemas/fleetRun';
import type { fleetRun } from '../src/workflows/fleetRun';
import type { RunStatus } from '../src/runbook/protocol';
import { failureOf, fleet, readHostFile, recordHistory, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { fleetHome } from './support/fleet';
import { guardState, LOCAL_ENVIRONMENT, SSH, TRANSPORTS } from './support/transports';
import { stepKey } from '../src/activities/ssh/remoteRun';

let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
const taskQueue = unique('fleetrun');

beforeAll(async () => {
  env = await testEnv();
  worker = await startWorker(env, writeInventory({ hosts: { h6: { jump: 'h1' } }, environments: LOCAL_ENVIRONMENT }), taskQueue);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

type FleetHandle = WorkflowHandle<typeof fleetRun>;

function start(input: Partial<FleetRunInput> & Record<string, unknown>, id = unique('fleet')): Promise<FleetHandle> {
  return env.client.workflow.start<typeof fleetRun>('fleetRun', {
    taskQueue,
    workflowId: id,
    args: [{ environment: 'test', target: { group: 'web' }, command: ['true'], ...input } as FleetRunInput],
  });
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const openGate = (h: WorkflowHandle, kind: 'approval' | 'failure') => waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open' && g.kind === kind), `an open ${kind} gate`);

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  return ((err as WorkflowUpdateFailedError).cause as Error).message;
}

describe('fleetRun', () => {
  it('runs the command on every host of the group and reports each', async () => {
    const h = await start({ target: { group: 'app' }, command: ['sh', '-c', 'echo "$1"; echo warn >&2', 'sh', '{node}'] });
    const result = await h.result();
    expect(result.ok).toBe(true);
    expect(result.summary).toMatchObject({ total: 3, succeeded: 3, failed: 0 });
    expect(result.hosts.map((r) => [r.host, r.stdout.trim(), r.stderr.trim(), r.exitCode])).toEqual([
      ['h4', 'h4', 'warn', 0],
      ['h5', 'h5', 'warn', 0],
      ['h6', 'h6', 'warn', 0],
    ]);
    const st = await status(h);
    expect(st.state).toBe('succeeded');
    expect(st.steps.filter((s) => s.host).map((s) => s.host)).toEqual(['h4', 'h5', 'h6']);
    recordHistory(h, 'fleetRun-success');
  });

  it('honours sudo, cwd and env, and reaches a host through a jump host', async () => {
    const h = await start({ target: { hosts: ['h2', 'h6'] }, command: ['sh', '-c', 'echo "$(id -u) $(pwd) $GREETING"'], sudo: true, cwd: '/tmp', env: { GREETING: 'hello world' } });
    const result = await h.result();
    expect(result.hosts.map((r) => r.stdout.trim())).toEqual(['0 /tmp hello world', '0 /tmp hello world']);
  });

  it('honours the concurrency limit', async () => {
    const h = await start({ target: { group: 'all' }, command: ['sleep', '0.4'], concurrency: 2 });
    const result = await h.result();
    const spans = result.hosts.map((r) => [Date.parse(r.startedAt ?? ''), Date.parse(r.endedAt ?? '')]);
    const overlap = Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s < b).length));
    expect(overlap).toBeLessThanOrEqual(2);
    expect(overlap).toBe(2);
  });

  it('stops starting hosts past the error budget, and skip finishes with the failures recorded', async () => {
    const h = await start({
      target: { group: 'all' },
      command: ['sh', '-c', 'case "$1" in h1|h2) echo broken >&2; exit 3;; esac', 'sh', '{node}'],
      concurrency: 1,
      maxErrors: 1,
    });
    const gate = await openGate(h, 'failure');
    expect(gate.evidence).toContain('h1: exit code 3 — broken');
    expect(gate.prompt).toContain('retry, skip, abort');
    await h.executeUpdate('resolve', { args: [{ action: 'skip', by: 'alice' }] });
    const result = await h.result();
    expect(result.ok).toBe(false);
    expect(result.hosts.map((r) => r.state)).toEqual(['failed', 'failed', 'not-started', 'not-started', 'not-started', 'not-started']);
    expect(result.summary).toMatchObject({ failed: 2, notStarted: 4, skipped: 6 });
  });

  it('a percentage error budget counts against the number of targets', async () => {
    const h = await start({ target: { group: 'all' }, command: ['sh', '-c', 'test "$1" != h1', 'sh', '{node}'], concurrency: 1, maxErrors: '20%', failure: { onFailure: 'fail' } });
    const { message, type } = await failureOf(h);
    expect(type).toBe('HostsFailed');
    expect(message).toContain('1 host(s) failed');
    expect(message).not.toContain('not started');
  });

  it('a failure gate answered with retry runs the failed hosts again', async () => {
    const flag = unique('flag');
    const h = await start({ target: { group: 'web' }, command: ['sh', '-c', `f="$2/${flag}"; test "$1" != h2 || test -e "$f" || { touch "$f"; exit 1; }`, 'sh', '{node}', '{root}'] });
    await openGate(h, 'failure');
    await h.executeUpdate('resolve', { args: [{ action: 'retry', by: 'alice' }] });
    const result = await h.result();
    expect(result.ok).toBe(true);
    expect(result.summary.succeeded).toBe(3);
    const st = await status(h);
    expect(st.steps.filter((s) => s.host === 'h2').map((s) => [s.state, s.attempt])).toEqual([
      ['failed', 1],
      ['succeeded', 2],
    ]);
    expect(st.decisions).toEqual([expect.objectContaining({ gate: 'failure', action: 'retry', by: 'alice' })]);
    recordHistory(h, 'fleetRun-retry');
  });

  it('a failure gate answered with abort ends the run failed', async () => {
    const h = await start({ command: ['false'] });
    await openGate(h, 'failure');
    await h.executeUpdate('resolve', { args: [{ action: 'abort', by: 'alice', comment: 'not today' }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Aborted');
    expect(message).toContain('3 host(s) failed');
  });

  it('an approval gate blocks until the quorum approves; strangers and second votes are refused', async () => {
    const marker = unique('approved');
    const h = await start({
      target: { hosts: ['h3'] },
      command: ['touch', `${fleet().hosts[2].dir}/root/${marker}`],
      approval: { approvers: ['alice', 'bob', 'carol'], quorum: 2, fourEyes: true },
      requestedBy: 'carol',
    });
    const gate = await openGate(h, 'approval');
    expect(gate).toMatchObject({ id: 'run', approvers: ['alice', 'bob', 'carol'], quorum: 2 });
    expect(gate.prompt).toContain('touch');
    expect(await refusal(h.executeUpdate('approve', { args: [{ by: 'mallory' }] }))).toContain('mallory may not answer gate "run"');
    expect(await refusal(h.executeUpdate('approve', { args: [{ by: 'carol' }] }))).toContain('four eyes');
    expect(await h.executeUpdate('approve', { args: [{ by: 'alice', comment: 'lgtm' }] })).toMatchObject({ state: 'open', approvals: 1, quorum: 2 });
    expect(await refusal(h.executeUpdate('approve', { args: [{ by: 'alice' }] }))).toContain('alice has already voted');
    expect(await refusal(h.executeUpdate('resolve', { args: [{ by: 'bob', action: 'retry' }] }))).toContain('approval gate');
    expect(await refusal(h.executeUpdate('approve', { args: [{ by: 'bob', gate: 'nope' }] }))).toContain('no gate "nope"');
    expect(await refusal(h.executeUpdate('approve', { args: [{ by: '' }] }))).toContain('by');
    expect(readHostFile('h3', marker)).toBeUndefined();
    // Refused updates leave no trace in history.
    const history = await h.fetchHistory();
    const accepted = history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? [];
    expect(accepted).toHaveLength(1);

    await h.executeUpdate('approve', { args: [{ by: 'bob' }] });
    expect((await h.result()).ok).toBe(true);
    expect(readHostFile('h3', marker)).toBe('');
    await expect(h.executeUpdate('approve', { args: [{ by: 'carol', gate: 'run' }] })).rejects.toThrow(/already completed/);
    recordHistory(h, 'fleetRun-approval');
  });

  it('resolves its targets in a local activity: no activity task of its own in history (docs/performance.md)', async () => {
    const h = await start({ target: { hosts: ['h1'] } });
    expect((await h.result()).ok).toBe(true);
    const events = (await h.fetchHistory()).events ?? [];
    expect(events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean)).not.toContain('resolveTargets');
    expect(events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toHaveLength(1);
  });

  it('signals answer gates too, and a refused signal is recorded with its reason', async () => {
    const h = await start({ approval: { approvers: ['alice'] } });
    await openGate(h, 'approval');
    await h.signal('approve', { by: 'mallory' });
    await waitFor(async () => (await status(h)).refused.length === 1, 'the refusal to be recorded');
    await h.signal('approve', { by: 'alice' });
    expect((await h.result()).ok).toBe(true);
    const st = await status(h);
    expect(st.refused[0]).toMatchObject({ by: 'mallory', message: 'approve' });
    expect(st.refused[0].reason).toContain('may not answer');
  });

  it('rejection ends the run before anything runs', async () => {
    const marker = unique('rejected');
    const h = await start({ target: { hosts: ['h1'] }, command: ['touch', `${fleet().hosts[0].dir}/root/${marker}`], approval: {} });
    await openGate(h, 'approval');
    await h.executeUpdate('reject', { args: [{ by: 'bob', reason: 'change freeze' }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Rejected');
    expect(message).toContain('rejected by bob: change freeze');
    expect(readHostFile('h1', marker)).toBeUndefined();
  });

  it('a gate that times out rejects; it never approves by itself', async () => {
    const h = await start({ approval: { timeout: '2s' } });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Rejected');
    expect(message).toContain('timed out after 2s');
    expect((await status(h)).steps.some((s) => s.name.startsWith('run on'))).toBe(false);
  });

  it('a dry run resolves the targets, lists every command and changes nothing', async () => {
    const marker = unique('dry');
    const h = await start({ target: { group: 'web' }, command: ['touch', `/tmp/${marker} x`], dryRun: true, sudo: true });
    const result = await h.result();
    expect(result.dryRun).toBe(true);
    expect(result.plan).toEqual(
      ['h1', 'h2', 'h3'].map((host, i) => ({ host, address: `opsflow-fleet@127.0.10.${i + 1}:${fleet().hosts[0].port}`, command: `sudo -n -- touch '/tmp/${marker} x'` })),
    );
    expect(existsSync(`/tmp/${marker} x`)).toBe(false);
  });

  it('escalation widens the approvers after its delay; the UI shows the gate in the current details', async () => {
    const h = await start({ approval: { approvers: ['alice'], remindEvery: '1s', escalateAfter: '2s', escalateTo: ['dave'] } });
    await openGate(h, 'approval');
    const details = (await h.query(workflowMetadataQuery)).currentDetails ?? '';
    expect(details).toContain('Waiting at gate `run` (approval)');
    expect(details).toContain('approvers: alice');
    expect(await refusal(h.executeUpdate('approve', { args: [{ by: 'dave' }] }))).toContain('dave may not answer');
    await waitFor(async () => (await status(h)).gates[0].approvers.includes('dave'), 'the escalation', 15_000);
    await h.executeUpdate('approve', { args: [{ by: 'dave' }] });
    expect((await h.result()).ok).toBe(true);
  });

  it('refuses bad input naming each field, before anything runs', async () => {
    const h = await env.client.workflow.start('fleetRun', { taskQueue, workflowId: unique('bad'), args: [{ environment: '../prod', target: { group: 'web', hosts: ['h1'] }, command: [], concurrency: 0, extra: 1 }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('InvalidInput');
    for (const field of ['environment:', 'target:', 'command:', 'concurrency:', 'Unrecognized key: "extra"']) expect(message).toContain(field);
  });

  it('refuses an unknown environment or group with what the inventory has', async () => {
    const { type, message } = await failureOf(await start({ environment: 'prod' }));
    expect(type).toBe('UnknownTarget');
    expect(message).toMatch(/^unknown environment "prod" \(the inventory \S+ has: test, local\); the built-in inventory .* `opsflow sandbox up` writes sandbox\/inventory\.yaml/);
    expect((await failureOf(await start({ target: { group: 'db' } }))).message).toContain('unknown group "db" in test (groups: all, web, app)');
  });
});

// The run guard and argv quoting, over SSH and over the local connection: one code path serves both, and only how
// the guarded script reaches the host differs.
describe.each(TRANSPORTS)('fleetRun over $name', (t) => {
  const on = (hosts = t.hosts) => ({ environment: t.environment, target: { hosts } });
  const [host] = t.hosts;

  // The fleet's hosts share one home directory, as NFS homes do, and one /var/tmp: the run guard's state of
  // one host must never pass for another's.
  it('each host runs the command once and reports its own result and identity', async () => {
    const log = path.join(fleetHome(), `${unique('ran')}.log`);
    const h = await start({ ...on(), command: ['sh', '-c', 'echo "$1" >> "$2"; echo "$1"', 'sh', '{node}', log] });
    const result = await h.result();
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean).sort()).toEqual(t.hosts);
    expect(result.hosts.map((r) => [r.host, r.state, r.stdout.trim(), r.resumed])).toEqual(t.hosts.map((n) => [n, 'succeeded', n, false]));
    for (const r of result.hosts) expect(r.ranOn).toEqual(t.ranOn(r.host));
  });

  it.each([
    ['made by another host', () => SSH.ranOn('h2'), 'another host shares its state directory'],
    ['made by this host before it restarted', () => ({ ...t.ranOn(host), bootId: '00000000-0000-4000-8000-000000000000' }), 'the host restarted since that attempt'],
  ])('refuses a recorded run %s, naming both identities, and a retry runs the command on this host', async (_, recorder, cause) => {
    const log = path.join(fleetHome(), `${unique('ran')}.log`);
    const h = await start({ ...on([host]), command: ['sh', '-c', 'echo "$1" >> "$2"; echo "$1"', 'sh', '{node}', log], approval: {} });
    await openGate(h, 'approval');
    // As if another host, or this one in an earlier boot, had run this step in its state directory and recorded a success.
    const other = recorder();
    const state = guardState(t);
    const planted = path.join(state, 'runs', stepKey(h.workflowId, (await h.describe()).runId, 'run#1', host));
    for (const d of [state, path.dirname(planted), planted]) execFileSync('install', ['-d', '-o', t.user, '-m', '700', d]);
    writeFileSync(path.join(planted, 'id'), `${other.hostKey} ${other.bootId}\n`);
    writeFileSync(path.join(planted, 'rc'), '0\n');
    writeFileSync(path.join(planted, 'out'), 'borrowed\n');
    execFileSync('chown', ['-R', t.user, planted]);
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    const gate = await openGate(h, 'failure');
    const me = t.ranOn(host);
    expect(gate.evidence).toContain(`made by host key ${other.hostKey} in boot ${other.bootId}, but ${host} is host key ${me.hostKey} in boot ${me.bootId}: ${cause}`);
    expect(existsSync(log)).toBe(false);
    await h.executeUpdate('resolve', { args: [{ action: 'retry', by: 'alice' }] });
    const result = await h.result();
    expect(result.hosts.map((r) => [r.host, r.state, r.stdout.trim(), r.resumed, r.ranOn])).toEqual([[host, 'succeeded', host, false, me]]);
    expect(readFileSync(log, 'utf8')).toBe(`${host}\n`);
  });

  it('passes every argument literally: no shell on the way', async () => {
    const marker = unique('pwned');
    // Braces that are not the host's placeholders stay as written: a shell's ${node}, an unknown {name}.
    const nasty = ['; rm -rf /', `$(touch /tmp/${marker})`, '`id`', "it's \"quoted\"", '*', '\\n', 'a\nb', '${node}', '{nope}', '{ print }'];
    const h = await start({ ...on([host]), command: ['printf', '%s|', ...nasty] });
    const result = await h.result();
    expect(result.hosts[0].stdout).toBe(nasty.map((a) => `${a}|`).join(''));
    expect(existsSync(`/tmp/${marker}`)).toBe(false);
  });

  it('kills the command when it exceeds its timeout, under sudo too', async () => {
    const tag = `${Math.floor(Math.random() * 1e6)}.5`;
    const h = await start({ ...on([host]), command: ['sleep', tag], sudo: true, timeout: '1s', failure: { onFailure: 'fail' } });
    const { message } = await failureOf(h);
    expect(message).toContain('timed out');
    await waitFor(() => spawnSync('pgrep', ['-f', `sleep ${tag}`]).status === 1, 'the sleep to be killed', 10_000);
  });

  it('cancelling the run kills the command', async () => {
    const tag = `${Math.floor(Math.random() * 1e6)}.25`;
    const h = await start({ ...on([host]), command: ['sleep', tag] });
    await waitFor(() => spawnSync('pgrep', ['-f', `sleep ${tag}`]).status === 0, 'the sleep to start');
    await h.cancel();
    const err = await h.result().then(() => undefined, (e: unknown) => e);
    expect((err as WorkflowFailedError).cause?.name).toBe('CancelledFailure');
    await waitFor(() => spawnSync('pgrep', ['-f', `sleep ${tag}`]).status === 1, 'the sleep to be killed', 10_000);
  });
});

describe('fleetRun on a local host', () => {
  // The worker's environment holds Temporal, Slack and codec secrets: a local command gets a login's environment.
  it("runs as the worker's user, in a login's environment rather than the worker's", async () => {
    process.env.OPSFLOW_TEST_WORKER_SECRET = 'not-for-commands';
    try {
      const h = await start({ environment: 'local', target: { group: 'all' }, command: ['sh', '-c', 'id -un; env'] });
      const [r] = (await h.result()).hosts;
      expect(r.host).toBe('localhost');
      expect(r.stdout.split('\n')[0]).toBe(userInfo().username);
      expect(r.stdout).toContain(`HOME=${userInfo().homedir}`);
      expect(r.stdout).not.toContain('not-for-commands');
    } finally {
      delete process.env.OPSFLOW_TEST_WORKER_SECRET;
    }
  });

  it('a dry run shows the host as the worker itself', async () => {
    const h = await start({ environment: 'local', target: { group: 'all' }, command: ['uname'], dryRun: true });
    expect((await h.result()).plan).toEqual([{ host: 'localhost', address: `${userInfo().username}@worker (local)`, command: 'uname' }]);
  });
});

describe('host keys', () => {
  it('refuses a host whose key is unknown, and one whose key changed', async () => {
    const f = fleet();
    const partial = `${f.dir}/known_hosts.partial`;
    writeFileSync(partial, readFileSync(f.knownHostsFile, 'utf8').split('\n').filter((l) => !l.startsWith('[127.0.10.2]')).join('\n'));
    const h1Key = readFileSync(f.knownHostsFile, 'utf8').split('\n').find((l) => l.startsWith('[127.0.10.1]'))?.split(' ').slice(1).join(' ');
    const queue = unique('keys');
    const w = await startWorker(env, writeInventory({ knownHostsFile: partial, hosts: { h3: { hostKeys: [h1Key] } } }), queue);
    try {
      const h = await env.client.workflow.start('fleetRun', { taskQueue: queue, workflowId: unique('keys'), args: [{ environment: 'test', target: { group: 'web' }, command: ['true'], failure: { onFailure: 'fail' }, maxErrors: 5 }] });
      const { message } = await failureOf(h);
      expect(message).toContain(`h2: unknown host key for h2 ([127.0.10.2]:${fleet().hosts[0].port}): SHA256:`);
      expect(message).toContain(`h3: host key for h3 ([127.0.10.3]:${fleet().hosts[0].port}) does not match`);
      expect(message).not.toContain('h1:');
    } finally {
      await w.stop();
    }
  });
});
