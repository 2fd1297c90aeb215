// The opsflow CLI end to end: the real bin/opsflow.js as a child process, against the test Temporal server
// and an in-process worker that runs commands on the real sshd fleet.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SA_ENVIRONMENT } from '../src/common/constants';
import { fleetRunInput } from '../src/schemas/fleetRun';
import { WORKFLOWS } from '../src/schemas/index';
import type { FleetRunResult } from '../src/workflows/fleetRun';
import type { RunStatus } from '../src/runbook/protocol';
import { failureOf, fleet, hostFile, readHostFile, runOpsflow, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
const taskQueue = unique('cli');
let dir: string;

beforeAll(async () => {
  env = await testEnv();
  worker = await startWorker(env, writeInventory(), taskQueue);
  dir = mkdtempSync(path.join(tmpdir(), 'opsflow-cli-'));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

const opsflow = (args: string[], extraEnv: Record<string, string> = {}) => runOpsflow(args, { cwd: dir, env: { OPSFLOW_TASK_QUEUE: taskQueue, OPSFLOW_USER: 'tester', ...extraEnv } });

/** Runs the CLI and expects exit code 0; returns stdout. */
async function ok(...args: string[]): Promise<string> {
  const r = await opsflow(args);
  expect(r, `opsflow ${args.join(' ')}`).toMatchObject({ code: 0, stderr: '' });
  return r.stdout;
}

/** `opsflow start fleetRun` with these --set options; returns the new run's workflow id. */
async function start(...sets: string[]): Promise<string> {
  const stdout = await ok('start', 'fleetRun', ...sets.flatMap((s) => ['--set', s]));
  const id = /^started fleetRun (\S+)$/m.exec(stdout)?.[1];
  expect(id, stdout).toBeDefined();
  expect(stdout).toContain(`follow: opsflow watch ${id}`);
  return id as string;
}

const handle = (id: string): WorkflowHandle => env.client.workflow.getHandle(id);

/** The status JSON as `opsflow status --json` prints it. */
async function statusJson(id: string): Promise<RunStatus> {
  return JSON.parse(await ok('status', id, '--json')) as RunStatus;
}

/** Waits, through the CLI, until the run waits at an open gate with this id. */
const gateOpen = (id: string, gate: string) => waitFor(async () => (await statusJson(id)).gates.find((g) => g.id === gate && g.state === 'open'), `gate "${gate}" of ${id} to open`);

const failureMessage = async (id: string): Promise<string> => (await failureOf(handle(id))).message;

describe('offline commands', () => {
  it('workflows lists each workflow with its description', async () => {
    expect(await ok('workflows')).toMatch(/^fleetRun\s+run one command on every host of a group/m);
  });

  it('schema prints the JSON Schema of the input', async () => {
    const schema = JSON.parse(await ok('schema', 'fleetRun')) as { type: string; properties: Record<string, unknown>; required: string[] };
    expect(schema.type).toBe('object');
    expect(schema.properties.command).toMatchObject({ type: 'array' });
    expect(schema.required).toEqual(expect.arrayContaining(['environment', 'target', 'command']));
  });

  it('example prints an input that the schema accepts', async () => {
    const example: unknown = JSON.parse(await ok('example', 'fleetRun'));
    expect(fleetRunInput.safeParse(example).success).toBe(true);
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await opsflow(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: opsflow');
    expect(r.stdout).toContain('approve [options] <workflowId>');
  });

  it('a command-line mistake exits 2 with the reason', async () => {
    const cases: [string[], string][] = [
      [['frobnicate'], "unknown command 'frobnicate'"],
      [['reject', 'some-run'], "required option '-r, --reason <text>' not specified"],
      [['resolve', 'some-run'], "required option '-a, --action <action>' not specified"],
      [['resolve', 'some-run', '--action', 'maybe'], "argument 'maybe' is invalid. Allowed choices are retry, skip, abort"],
      [['status'], "missing required argument 'workflowId'"],
      [['list', '--env', '../prod'], 'letters, digits'],
      [['schema', 'nope'], `unknown workflow "nope" (known: ${Object.keys(WORKFLOWS).join(', ')})`],
      [['start', 'fleetRun', '--set', 'command'], '--set command: expected path=value'],
      [['start', 'fleetRun', '--input', 'not-json.json'], 'not-json.json: not JSON:'],
      [['start', 'fleetRun', '--input', 'missing.json'], "ENOENT: no such file or directory, open 'missing.json'"],
      [['start', 'nope', '--set', 'environment=test'], `unknown workflow "nope" (known: ${Object.keys(WORKFLOWS).join(', ')})`],
    ];
    writeFileSync(path.join(dir, 'not-json.json'), '{ environment: test }');
    for (const [args, message] of cases) {
      const r = await opsflow(args);
      expect(r.code, `opsflow ${args.join(' ')}`).toBe(2);
      expect(r.stderr).toContain(message);
    }
  });

  it('says when Temporal cannot be reached, and exits 1', async () => {
    const r = await opsflow(['status', 'some-run'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('opsflow: cannot reach Temporal at 127.0.0.1:1');
  });
});

describe('start and plan', () => {
  it('refuses invalid input naming each bad field, exits 2 and starts nothing', async () => {
    const id = unique('invalid');
    const r = await opsflow(['start', 'fleetRun', '--id', id, '--set', 'environment=../prod', '--set', 'command=[]', '--set', 'concurrency=0', '--set', 'maxErrors=150%', '--set', 'target.group=web']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('invalid input for fleetRun:');
    for (const field of ['- environment:', '- command: needs at least the program name', '- concurrency:', '- maxErrors:']) expect(r.stderr).toContain(field);
    expect(r.stderr).not.toContain('- target');
    await expect(handle(id).describe()).rejects.toThrow(/not found/i);
  });

  it('reads --input from a file, with --set on top; the run carries a summary and its environment', async () => {
    const file = path.join(dir, 'input.json');
    writeFileSync(file, JSON.stringify({ environment: 'test', target: { group: 'web' }, command: ['echo', 'from the file'], dryRun: true, sudo: true }));
    const id = unique('from-file');
    const stdout = await ok('start', 'fleetRun', '--id', id, '--input', file, '--set', 'target.group=app', '--set', 'command=["echo","from --set"]', '--set', 'sudo=false');
    expect(stdout).toContain(`started fleetRun ${id}`);
    const result = (await handle(id).result()) as FleetRunResult;
    expect(result.plan).toEqual(['h4', 'h5', 'h6'].map((host) => expect.objectContaining({ host, command: "echo 'from --set'" })));

    const description = await handle(id).describe();
    expect(await description.staticSummary()).toBe('fleetRun test: echo from --set');
    expect(description.typedSearchAttributes.get(SA_ENVIRONMENT)).toBe('test');
  });

  it('plan prints every host and its command, and changes nothing', async () => {
    const marker = unique('planned');
    const target = `${hostFile('h1', marker)} x`;
    const r = await ok('plan', 'fleetRun', '--set', 'environment=test', '--set', 'target.group=web', '--set', `command=["touch", ${JSON.stringify(target)}]`);
    const plan = JSON.parse(r) as FleetRunResult;
    expect(plan).toMatchObject({ ok: true, dryRun: true, environment: 'test', summary: { total: 3, succeeded: 0, notStarted: 3 }, hosts: [] });
    expect(plan.plan).toEqual(['h1', 'h2', 'h3'].map((host, i) => ({ host, address: `opsflow-fleet@127.0.10.${i + 1}:${fleet().hosts[0].port}`, command: `touch '${target}'` })));
    expect(readHostFile('h1', `${marker} x`)).toBeUndefined();
  });
});

describe('gates', () => {
  it('approval: status shows the gate, a stranger is refused, an approver lets it run, watch follows it to the end', async () => {
    const marker = unique('approved');
    const id = await start('environment=test', 'target={"hosts":["h1"]}', `command=["touch",${JSON.stringify(hostFile('h1', marker))}]`, 'approval={"approvers":["alice"]}');

    const shown = await waitFor(async () => {
      const out = await ok('status', id);
      return out.includes('WAITING') && out;
    }, 'the run to wait at its gate');
    expect(shown).toContain(`fleetRun  ${id}`);
    expect(shown).toContain('  env test, requested by tester\n');
    expect(shown).toContain('WAITING at gate "run" (approval): run `touch');
    expect(shown).toContain('approvers: alice; 0/1 approvals');
    expect(shown).toContain(`answer: opsflow approve ${id} --gate run   |   opsflow reject ${id} --gate run --reason "..."`);

    const st = await statusJson(id);
    expect(st).toMatchObject({ workflow: 'fleetRun', workflowId: id, state: 'waiting', phase: 'approval', environment: 'test' });
    expect(st.gates).toEqual([expect.objectContaining({ id: 'run', kind: 'approval', state: 'open', approvers: ['alice'], quorum: 1 })]);

    const refused = await opsflow(['approve', id, '--by', 'mallory']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^opsflow: refused: .*mallory may not answer gate "run" \(allowed: alice\)/);
    expect(readHostFile('h1', marker)).toBeUndefined();

    expect(await ok('approve', id, '--by', 'alice', '--comment', 'ok')).toBe('approve: gate "run" is approved (1/1 approvals)\n');

    const watched = await ok('watch', id, '--interval', '200');
    expect(watched).toMatch(/resolve targets: succeeded/);
    expect(watched).toMatch(/run @h1: succeeded/);
    expect(watched).toContain('state succeeded');
    expect(watched).toMatch(/decisions:\n {2}\S+ alice approve run: ok/);
    expect(readHostFile('h1', marker)).toBe('');
  });

  it('reject --reason ends the run failed, and status says why', async () => {
    const id = await start('environment=test', 'target.group=web', 'command=["true"]', 'approval={}');
    await gateOpen(id, 'run');
    expect(await ok('reject', id, '--by', 'bob', '--reason', 'change freeze')).toBe('reject: gate "run" is rejected\n');
    expect(await failureMessage(id)).toContain('rejected by bob: change freeze');

    const shown = await ok('status', id);
    expect(shown).toContain('state failed');
    expect(shown).toContain('error: gate "run" rejected by bob: change freeze');
    expect(shown).toMatch(/run \(approval\): rejected/);
    const watched = await opsflow(['watch', id]);
    expect(watched.code).toBe(1);
    expect(watched.stderr).toContain('opsflow: the run failed');
  });

  it('resolve answers failure gates: retry runs again, skip ends the run with the failure recorded', async () => {
    const id = await start('environment=test', 'target={"hosts":["h2"]}', 'command=["false"]');
    const gate = await gateOpen(id, 'failure');
    expect(gate.evidence).toContain('h2: exit code 1');
    const shown = await ok('status', id);
    expect(shown).toContain('WAITING at gate "failure" (failure)');
    expect(shown).toContain(`answer: opsflow resolve ${id} --gate failure --action retry|skip|abort`);

    expect(await ok('resolve', id, '--action', 'retry', '--by', 'alice')).toBe('resolve: gate "failure" is retry\n');
    await gateOpen(id, 'failure-2');
    expect(await ok('resolve', id, '--action', 'skip', '--comment', 'known broken')).toBe('resolve: gate "failure-2" is skip\n');

    const result = (await handle(id).result()) as FleetRunResult;
    expect(result).toMatchObject({ ok: false, summary: { failed: 1, skipped: 1 } });
    const st = await statusJson(id);
    expect(st.decisions.map((d) => [d.gate, d.action, d.by])).toEqual([
      ['failure', 'retry', 'alice'],
      ['failure-2', 'skip', 'tester'],
    ]);
  });

  it('resolve --action abort ends the run failed', async () => {
    const id = await start('environment=test', 'target={"hosts":["h3"]}', 'command=["false"]');
    await gateOpen(id, 'failure');
    // An approval answer does not fit a failure gate.
    const wrong = await opsflow(['approve', id]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('refused: gate "failure" is a failure gate: answer it with resolve');
    expect(await ok('resolve', id, '--action', 'abort', '--comment', 'not today')).toBe('resolve: gate "failure" is abort\n');
    expect(await failureMessage(id)).toContain('aborted: 1 host(s) failed');
    expect(await ok('status', id)).toContain('state failed');
  });

  it('approve --signal answers the gate by signal; a refused signal shows in status', async () => {
    const id = await start('environment=test', 'target={"hosts":["h4"]}', 'command=["true"]', 'approval={"approvers":["alice"]}');
    await gateOpen(id, 'run');
    expect(await ok('approve', id, '--signal', '--by', 'mallory')).toBe(`signal approve sent to ${id}; check \`opsflow status ${id}\` for refusals\n`);
    const refusals = await waitFor(async () => {
      const out = await ok('status', id);
      return out.includes('refused answers:') && out;
    }, 'the refused signal to show');
    expect(refusals).toMatch(/refused answers:\n {2}\S+ mallory approve: mallory may not answer gate "run"/);

    await ok('approve', id, '--signal', '--by', 'alice');
    expect(((await handle(id).result()) as FleetRunResult).ok).toBe(true);
    expect((await statusJson(id)).decisions).toEqual([expect.objectContaining({ gate: 'run', action: 'approve', by: 'alice' })]);
  });
});

describe('list', () => {
  it('lists runs by environment, and says when none match', async () => {
    const id = await start('environment=test', 'target.group=web', 'command=["true"]', 'dryRun=true');
    await handle(id).result();
    // Visibility is eventually consistent: the run shows up shortly after it closes.
    const line = await waitFor(async () => (await ok('list', '--env', 'test', '--status', 'Completed', '--limit', '1000')).split('\n').find((l) => l.endsWith(` ${id}`)), 'the run to be listed');
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d {2}COMPLETED +fleetRun +test +/);
    expect(await ok('list', '--env', 'nope')).toBe('no runs match\n');
  });
});
