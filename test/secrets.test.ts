// A passphrase-protected key: the passphrase lives only in the worker's environment, and neither it nor the
// key reaches the run's history, its errors or the worker's logs.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { fleetRun } from '../src/workflows/fleetRun';
import { fleet, spawnWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

const PASSPHRASE = `pp-${unique('secret')}`;
let env: TestWorkflowEnvironment;
let keyFile: string;
const workers: ReturnType<typeof spawnWorker>[] = [];

beforeAll(async () => {
  env = await testEnv();
  keyFile = path.join(mkdtempSync(path.join(tmpdir(), 'opsflow-key-')), 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', PASSPHRASE, '-C', 'opsflow-secrets-test', '-f', keyFile]);
  // The fleet rewrites authorized_keys when hosts (re)start; keys that tests add live beside it.
  appendFileSync(path.join(fleet().dir, 'keys/authorized_keys.extra'), readFileSync(`${keyFile}.pub`, 'utf8'));
});
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await env?.teardown();
});

async function run(workerEnv: Record<string, string>) {
  const queue = unique('secrets');
  const inventory = writeInventory({ hosts: { h1: { identityFile: keyFile, passphraseEnv: 'OPSFLOW_TEST_PASSPHRASE' } } });
  const worker = spawnWorker(inventory, queue, { OPSFLOW_LOG_LEVEL: 'debug', ...workerEnv });
  workers.push(worker);
  const handle = await env.client.workflow.start<typeof fleetRun>('fleetRun', {
    taskQueue: queue,
    workflowId: unique('secrets'),
    args: [{ environment: 'test', target: { hosts: ['h1'] }, command: ['echo', 'ok'], failure: { onFailure: 'fail' } }],
  });
  const outcome = await handle.result().then(
    (r) => ({ ok: true as const, r }),
    (e: unknown) => ({ ok: false as const, message: ((e as WorkflowFailedError).cause as Error).message }),
  );
  const history = JSON.stringify(await handle.fetchHistory());
  worker.kill('SIGTERM');
  await waitFor(() => worker.exitCode !== null || worker.signalCode !== null, 'the worker to stop');
  return { outcome, history, logs: worker.output() };
}

describe('secrets', () => {
  const privateKeyBody = () => readFileSync(keyFile, 'utf8').split('\n')[1];

  it('connects with a passphrase from the worker environment and leaks it nowhere', async () => {
    const { outcome, history, logs } = await run({ OPSFLOW_TEST_PASSPHRASE: PASSPHRASE });
    expect(outcome.ok && outcome.r.hosts[0].stdout).toBe('ok\n');
    for (const text of [history, logs]) {
      expect(text).not.toContain(PASSPHRASE);
      expect(text).not.toContain(privateKeyBody());
    }
  });

  it('a missing passphrase is a clear, non-retryable error that names the variable, not the secret', async () => {
    const { outcome, history } = await run({});
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.message).toContain('set OPSFLOW_TEST_PASSPHRASE');
    expect(history).not.toContain(privateKeyBody());
  });

  it('a wrong passphrase fails without echoing it', async () => {
    const wrong = `wrong-${unique('pp')}`;
    const { outcome, history, logs } = await run({ OPSFLOW_TEST_PASSPHRASE: wrong });
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.message).toMatch(/could not be decrypted|cannot be used/);
    for (const text of [history, logs]) expect(text).not.toContain(wrong);
  });
});
