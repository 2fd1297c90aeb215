import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CancelledFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { expect, inject } from 'vitest';
import { stringify } from 'yaml';
import { loadInventory } from '../../src/config/inventory';
import { findTemporalCli } from '../../src/temporal/binary';
import { portOpen as portOpenAt } from '../../src/sandbox/processes';
import type { SlackSettings } from '../../src/slack/settings';
import type { RunStatus } from '../../src/runbook/protocol';
import { createOpsWorker } from '../../src/workers/worker';
import type { Fleet } from './fleet';

export const ROOT = path.resolve(__dirname, '../..');

// Worker lifecycle chatter at INFO would bury the test report; warnings and errors still show.
Runtime.install({ logger: new DefaultLogger('WARN') });

export function fleet(): Fleet {
  return inject('fleet');
}

export async function testEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createFromExistingServer({ address: inject('temporalAddress') });
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export const portOpen = (port: number): Promise<boolean> => portOpenAt('127.0.0.1', port);

export const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

export interface InventoryOptions {
  /** Extra fields merged into a host's entry, by host name. */
  hosts?: Record<string, Record<string, unknown>>;
  knownHostsFile?: string;
  groups?: Record<string, string[]>;
  services?: Record<string, unknown>;
  people?: Record<string, { slack?: string; keys?: string[] }>;
  notify?: { channel: string };
  /** More environments beside `test`. */
  environments?: Record<string, unknown>;
  /** More top-level sections: aws, databases, systems. */
  sections?: Record<string, unknown>;
}

/**
 * What the inventory says of a fleet host besides its address: where its boot id is (the fleet's restart-host
 * changes it) and, as {root}, its own directory (the fleet's hosts share one home, as NFS homes do).
 */
export function fleetHostEntry(h: { name: string; address: string; dir: string }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { address: h.address, bootIdFile: path.join(h.dir, 'boot_id'), ...extra, vars: { root: path.join(h.dir, 'root'), ...(extra.vars as Record<string, string> | undefined) } };
}

/**
 * An inventory for the test fleet: environment `test` with h1-h6, groups `web` (h1-h3) and `app` (h4-h6).
 * h7-h9 are kept for tests that reboot hosts; they name them in `hosts`.
 */
export function writeInventory(opts: InventoryOptions = {}): string {
  const f = { ...fleet(), hosts: fleet().hosts.slice(0, 6) };
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-inv-'));
  const hosts = Object.fromEntries(
    f.hosts.map((h, i) => [h.name, fleetHostEntry(h, { roles: i === 0 ? ['blue'] : ['green'], ...(opts.hosts?.[h.name] ?? {}) })]),
  );
  for (const [name, extra] of Object.entries(opts.hosts ?? {})) {
    const h = fleet().hosts.find((x) => x.name === name);
    if (!hosts[name]) hosts[name] = h && (extra as { address?: string }).address === h.address ? fleetHostEntry(h, extra) : extra;
  }
  const file = path.join(dir, 'inventory.yaml');
  writeFileSync(
    file,
    stringify({
      knownHosts: opts.knownHostsFile ?? f.knownHostsFile,
      defaults: { user: f.user, port: f.hosts[0].port, identityFile: f.identityFile },
      ...(opts.people ? { people: opts.people } : {}),
      environments: {
        test: {
          hosts,
          groups: { web: ['h1', 'h2', 'h3'], app: ['h4', 'h5', 'h6'], ...(opts.groups ?? {}) },
          ...(opts.services ? { services: opts.services } : {}),
          ...(opts.notify ? { notify: opts.notify } : {}),
        },
        ...opts.environments,
      },
      ...opts.sections,
    }),
  );
  return file;
}

/** An in-process worker on its own task queue; stop() shuts it down and waits. */
export async function startWorker(env: TestWorkflowEnvironment, inventoryFile: string, taskQueue: string, slack?: SlackSettings) {
  const { worker, ssh } = await createOpsWorker({
    slack,
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    inventory: loadInventory(inventoryFile),
    taskQueue,
    workflowBundle: { codePath: inject('workflowBundlePath') },
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
      await ssh.closeAll();
    },
  };
}

/**
 * A worker in its own process, as production runs it, so a test can SIGKILL it. `release` is the checkout it
 * runs from (another one plays a new release of opsflow).
 */
export function spawnWorker(inventoryFile: string, taskQueue: string, extraEnv: Record<string, string> = {}, release = ROOT): ChildProcess & { output: () => string } {
  const logDir = path.join(ROOT, 'test/artifacts');
  mkdirSync(logDir, { recursive: true });
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/workers/main.ts', '--inventory', inventoryFile, '--task-queue', taskQueue], {
    cwd: release,
    env: { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  child.on('exit', () => writeFileSync(path.join(logDir, `worker-${taskQueue}-${child.pid}.log`), log.join('')));
  return Object.assign(child, { output: () => log.join('') });
}

/** Polls until `fn` returns a truthy value; bounded, so a broken run fails the test instead of hanging it. */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 30_000, intervalMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A file in a fleet host's own directory. */
export function hostFile(host: string, name: string): string {
  const h = fleet().hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no fleet host ${host}`);
  return path.join(h.dir, 'root', name);
}

export function readHostFile(host: string, name: string): string | undefined {
  try {
    return readFileSync(hostFile(host, name), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * With OPSFLOW_RECORD_HISTORIES=1, saves the run's history under test/histories for the replay test, which
 * then proves that later workflow code still replays it. The JSON is what the Temporal CLI and UI export.
 */
export function recordHistory(handle: WorkflowHandle, name: string): void {
  if (process.env.OPSFLOW_RECORD_HISTORIES !== '1') return;
  const cli = findTemporalCli();
  if (!cli) throw new Error('recording histories needs the temporal CLI');
  const json = execFileSync(cli, ['workflow', 'show', '--workflow-id', handle.workflowId, '--address', inject('temporalAddress'), '--output', 'json'], { encoding: 'utf8' });
  const dir = path.join(ROOT, 'test/histories');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), json);
}

/** Waits for the run to fail and returns its failure as the operator reads it: type and message. */
export async function failureOf(handle: WorkflowHandle): Promise<{ type?: string; message: string }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as { message: string; type?: string };
  return { type: cause.type, message: cause.message };
}

/**
 * Waits for a cancelled run to end, checks that it ended Canceled with every undo step done, and returns its last
 * status, which says what was put back.
 */
export async function cancelledRun(handle: WorkflowHandle): Promise<RunStatus> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect((await handle.describe()).status.name).toBe('CANCELLED');
  const status = await handle.query<RunStatus>('status');
  expect(status).toMatchObject({ state: 'cancelled', undo: { why: 'cancelled', notPutBack: [] } });
  return status;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node bin/opsflow.js ...args` against the test server and collects its output. Asynchronous, so an
 * in-process worker keeps working while the CLI waits on it; killed after a minute so a hang fails the test.
 */
export function runOpsflow(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runProgram(process.execPath, [path.join(ROOT, 'bin/opsflow.js'), ...args], { cwd: opts.cwd ?? ROOT, env: { TEMPORAL_ADDRESS: inject('temporalAddress'), ...opts.env } });
}

/** Runs the `temporal` CLI against the test server, as an operator would (asynchronously, for the same reason). */
export function runTemporal(args: string[]): Promise<CliResult> {
  const cli = findTemporalCli();
  if (!cli) throw new Error('the temporal CLI is not installed');
  return runProgram(cli, [...args, '--address', inject('temporalAddress')], { cwd: ROOT });
}

function runProgram(program: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
