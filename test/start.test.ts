// `npm start` as a user runs it: embedded dev server persisted to SQLite, Web UI, worker. A run waiting at a
// gate survives a full restart of all of it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import type { fleetRun } from '../src/workflows/fleetRun';
import type { RunStatus } from '../src/runbook/protocol';
import { freePort, portOpen, ROOT, unique, waitFor, writeInventory } from './support/harness';

const dataDir = mkdtempSync(path.join(tmpdir(), 'opsflow-data-'));
const running: ChildProcess[] = [];

afterAll(() => {
  for (const p of running) if (p.exitCode === null) p.kill('SIGKILL');
});

async function npmStart(env: Record<string, string>): Promise<{ proc: ChildProcess; output: () => string }> {
  const { TEMPORAL_ADDRESS: _ignored, ...inherited } = process.env;
  const proc = spawn('npm', ['start'], { cwd: ROOT, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => /state: 'RUNNING'/.test(out) || proc.exitCode !== null, 'npm start to run the worker', 90_000, 200);
  if (proc.exitCode !== null) throw new Error(`npm start exited ${proc.exitCode}:\n${out}`);
  return { proc, output: () => out };
}

/** Ctrl-C: SIGINT to the whole process group (npm and the program); the worker drains and the server stops. */
async function stop(started: { proc: ChildProcess; output: () => string }, port: number): Promise<void> {
  process.kill(-(started.proc.pid as number), 'SIGINT');
  await waitFor(() => started.proc.exitCode !== null || started.proc.signalCode !== null, 'npm start to stop', 30_000, 200);
  expect(started.output()).toContain("state: 'STOPPED'");
  expect(started.output().split('\n').filter((l) => /Error|unhandled/i.test(l))).toEqual([]);
  await waitFor(async () => !(await portOpen(port)), 'the server port to close', 15_000, 200);
}

describe('npm start', () => {
  it('serves the UI, registers the search attributes, and keeps runs across a restart', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    const env = { OPSFLOW_DATA_DIR: dataDir, OPSFLOW_TEMPORAL_PORT: String(port), OPSFLOW_UI_PORT: String(uiPort), OPSFLOW_INVENTORY: writeInventory() };

    const first = await npmStart(env);
    expect(first.output()).toContain(`Web UI:     http://127.0.0.1:${uiPort}`);
    expect((await fetch(`http://127.0.0.1:${uiPort}/`)).status).toBe(200);

    let connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    let client = new Client({ connection });
    const id = unique('persisted');
    await client.workflow.start<typeof fleetRun>('fleetRun', {
      taskQueue: 'opsflow',
      workflowId: id,
      args: [{ environment: 'test', target: { hosts: ['h1'] }, command: ['hostname'], approval: { approvers: ['alice'] } }],
    });
    await waitFor(async () => (await client.workflow.getHandle(id).query<RunStatus>('status')).state === 'waiting', 'the gate');
    await connection.close();
    await stop(first, port);

    const second = await npmStart(env);
    connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    client = new Client({ connection });
    try {
      const handle = client.workflow.getHandle<typeof fleetRun>(id);
      await handle.executeUpdate('approve', { args: [{ by: 'alice' }] });
      expect((await handle.result()).ok).toBe(true);
      const found = [];
      for await (const wf of client.workflow.list({ query: `OpsEnvironment = "test" AND WorkflowId = "${id}"` })) found.push(wf.workflowId);
      expect(found).toEqual([id]);
    } finally {
      await connection.close();
      await stop(second, port);
    }
  });
});
