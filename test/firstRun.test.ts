// The first ten minutes, as a newcomer meets them: `npm start` with no inventory, the README's first example on
// the built-in `local` environment, a sandbox inventory written while the worker runs, and the errors met first.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { fleetRun } from '../src/workflows/fleetRun';
import { freePort, ROOT, runOpsflow, waitFor } from './support/harness';

const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const running: ChildProcess[] = [];

afterAll(() => {
  for (const p of running) if (p.exitCode === null) p.kill('SIGKILL');
});

/** `npm start`'s program (src/main.ts) in `cwd`, its own dev server on free ports, nothing inherited that names an inventory, a server or a CLI. */
function startLikeNpmStart(cwd: string, env: Record<string, string>): { proc: ChildProcess; output: () => string } {
  const { TEMPORAL_ADDRESS: _a, OPSFLOW_INVENTORY: _i, TEMPORAL_CLI_PATH: _c, ...inherited } = process.env;
  const proc = spawn(process.execPath, [TSX, path.join(ROOT, 'src/main.ts')], { cwd, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out };
}

describe('a fresh clone: npm start with no inventory', () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'opsflow-fresh-'));
  let started: ReturnType<typeof startLikeNpmStart>;
  let address: string;
  let connection: Connection;
  let client: Client;
  const cli = (args: string[]) => runOpsflow(args, { cwd, env: { TEMPORAL_ADDRESS: address } });
  const idOf = (stdout: string) => /^started fleetRun (\S+)/.exec(stdout)?.[1] as string;

  beforeAll(async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    address = `127.0.0.1:${port}`;
    started = startLikeNpmStart(cwd, { OPSFLOW_DATA_DIR: path.join(cwd, 'data'), OPSFLOW_TEMPORAL_PORT: String(port), OPSFLOW_UI_PORT: String(uiPort) });
    await waitFor(() => /state: 'RUNNING'|worker running/.test(started.output()) || started.proc.exitCode !== null, 'the worker to run', 120_000, 200);
    if (started.proc.exitCode !== null) throw new Error(`src/main.ts exited ${started.proc.exitCode}:\n${started.output()}`);
    connection = await Connection.connect({ address });
    client = new Client({ connection });
  }, 150_000);

  afterAll(async () => {
    await connection?.close();
    started?.proc.kill('SIGINT');
  });

  it('says in its banner that it uses the built-in inventory, and what to try', () => {
    expect(started.output()).toContain('inventory:  built-in: environment "local", host "localhost" (this machine)');
    expect(started.output()).toContain(`try:        npx opsflow start fleetRun --set environment=local --set target.group=all --set 'command=["uname","-a"]'`);
  });

  it("runs the README's first example on this machine: the result names localhost", async () => {
    const r = await cli(['start', 'fleetRun', '--set', 'environment=local', '--set', 'target.group=all', '--set', 'command=["uname","-a"]']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const result = await client.workflow.getHandle<typeof fleetRun>(idOf(r.stdout)).result();
    expect(result.ok).toBe(true);
    expect(result.hosts.map((h) => [h.host, h.state])).toEqual([['localhost', 'succeeded']]);
    expect(result.hosts[0].stdout).toMatch(/^Linux /);
  });

  it('an unknown environment names the ones there are and where others come from', async () => {
    const r = await cli(['start', 'fleetRun', '--set', 'environment=staging', '--set', 'target.group=all', '--set', 'command=["true"]']);
    const err = await client.workflow.getHandle(idOf(r.stdout)).result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as Error & { type?: string };
    expect(cause.type).toBe('UnknownTarget');
    expect(cause.message).toContain('unknown environment "staging" (the built-in inventory has: local); the built-in inventory (used when there is no inventory file) has the environment `local`');
    expect(cause.message).toContain('`opsflow sandbox up` writes sandbox/inventory.yaml');
  });

  // The contract with `opsflow sandbox up` (docs/inventory.md): it writes sandbox/inventory.yaml whole (a rename),
  // and the running worker uses it from then on.
  it('picks up sandbox/inventory.yaml written after it started, without a restart', async () => {
    mkdirSync(path.join(cwd, 'sandbox'), { recursive: true });
    writeFileSync(path.join(cwd, 'sandbox/inventory.yaml.new'), stringify({ environments: { sandbox: { hosts: { box: { connection: 'local' } } } } }));
    renameSync(path.join(cwd, 'sandbox/inventory.yaml.new'), path.join(cwd, 'sandbox/inventory.yaml'));
    const r = await cli(['start', 'fleetRun', '--set', 'environment=sandbox', '--set', 'target.group=all', '--set', 'command=["echo","{node}"]']);
    const result = await client.workflow.getHandle<typeof fleetRun>(idOf(r.stdout)).result();
    expect(result.hosts.map((h) => [h.host, h.stdout.trim()])).toEqual([['box', 'box']]);
  });

  it('opsflow roles prints the registry and nothing else; --verbose adds the log on stderr', async () => {
    const inventory = path.join(cwd, 'systems.yaml');
    writeFileSync(
      inventory,
      stringify({
        aws: { acct: { region: 'eu-west-3' } },
        systems: { demo: { infrastructures: { blue: { aws: 'acct' }, green: { aws: 'acct' } }, roles: { production: 'blue', standby: 'green' } } },
      }),
    );
    const quiet = await cli(['roles', 'demo', '--inventory', inventory]);
    expect(quiet).toMatchObject({ code: 0, stderr: '' });
    expect(quiet.stdout).toMatch(/production\s+blue/);
    const verbose = await cli(['--verbose', 'roles', 'demo', '--inventory', inventory]);
    expect(verbose.stdout).toBe(quiet.stdout);
    expect(verbose.stderr).toContain('"msg":"inventory loaded"');
  });
});

describe('no temporal CLI, no Go, no download', () => {
  it('says how to install either, and exits 2', async () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'opsflow-nocli-'));
    // No PATH: neither `temporal` nor `go` is found; TMPDIR where nothing can be written: the SDK's download fails
    // whether or not this machine reaches the internet.
    const { proc, output } = startLikeNpmStart(cwd, { PATH: '', TMPDIR: '/nonexistent-opsflow', OPSFLOW_DATA_DIR: path.join(cwd, 'data'), OPSFLOW_TEMPORAL_PORT: String(await freePort()), OPSFLOW_UI_PORT: String(await freePort()) });
    await waitFor(() => proc.exitCode !== null, 'src/main.ts to give up', 120_000, 200);
    expect(proc.exitCode).toBe(2);
    expect(output()).toContain('no `temporal` CLI (looked in TEMPORAL_CLI_PATH, PATH and $(go env GOPATH)/bin), no Go to build it, and the download of the dev server failed');
    expect(output()).toContain('the Temporal CLI (https://docs.temporal.io/cli#install)');
    expect(output()).toContain('go install github.com/temporalio/cli/cmd/temporal@v1.5.1');
  }, 150_000);
});
