// Operators in the Temporal Web UI: the dev server's own UI (2.42.1) in Debian's chromium. A run is started from
// the Start Workflow form, followed in the UI, and its gate answered with the Send an Update form; with payload
// encryption on, the UI reads everything through the codec server while the stored history is ciphertext.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AesGcmCodec, ENCODING } from '../src/codec/aesGcm';
import { parseKeys } from '../src/codec/keys';
import { startCodecServer, type CodecServer } from '../src/codec/server';
import { startDevServer, type DevServer } from '../src/temporal/devServer';
import type { FleetRunResult } from '../src/workflows/fleetRun';
import type { RunStatus } from '../src/runbook/protocol';
import { launchBrowser, type Browser } from './support/browser';
import { failureOf, freePort, ROOT, startWorker, unique, waitFor, writeInventory } from './support/harness';

const ARTIFACTS = path.join(ROOT, 'test/artifacts/ui');
/** docs/workflows/fleetRun.md's example (test/readme.test.ts keeps the two equal), pointed at the test inventory. */
const README_EXAMPLE = { ...JSON.parse(readFileSync(path.join(ROOT, 'examples/fleetRun.json'), 'utf8')), environment: 'test' };

/** A UI page that is still loading or rendering is retried by reloading it, within a bound. */
const UI_WAIT = 90_000;

interface Stack {
  server: DevServer;
  env: TestWorkflowEnvironment;
  worker: { stop(): Promise<void> };
  taskQueue: string;
  browser: Browser;
  ui: string;
}

async function startStack(name: string, opts: { codecServer?: (uiOrigin: string) => Promise<CodecServer>; workerEnv?: Record<string, string> } = {}): Promise<Stack & { codec?: CodecServer }> {
  const uiPort = await freePort();
  const codec = await opts.codecServer?.(`http://127.0.0.1:${uiPort}`);
  const server = await startDevServer({ uiPort, codecEndpoint: codec?.url });
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address: server.address });
  const taskQueue = unique(`ui-${name}`);
  // The worker reads its encryption keys from the environment when it is created, as `npm start` does.
  const saved = Object.fromEntries(Object.keys(opts.workerEnv ?? {}).map((k) => [k, process.env[k]]));
  Object.assign(process.env, opts.workerEnv);
  let worker: Stack['worker'];
  try {
    worker = await startWorker(env, writeInventory(), taskQueue);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const browser = await launchBrowser(ARTIFACTS, name);
  return { server, env, worker, taskQueue, browser, ui: server.uiUrl as string, codec };
}

async function stopStack(s: Partial<Stack> & { codec?: CodecServer }): Promise<void> {
  await s.browser?.close();
  await s.worker?.stop();
  await s.env?.teardown();
  await s.server?.stop();
  await s.codec?.close();
}

/**
 * Presses a form's submit button from the keyboard. Pressing the mouse on it takes the focus from the JSON
 * editor, the UI re-renders the button before the mouse comes up, and the click lands on its container.
 */
const submit = (button: Locator) => button.press('Enter', { timeout: 30_000 });

const jsonEditor = (scope: Page | Locator) => scope.locator('[contenteditable="true"][data-language="json"]').first();

async function startFromForm(b: Browser, ui: string, run: { id: string; taskQueue: string; type: string; input: unknown }): Promise<void> {
  const p = b.page;
  await p.goto(`${ui}/namespaces/default/workflows/start-workflow`);
  await p.getByLabel('Workflow ID').fill(run.id);
  await p.getByLabel('Task Queue').fill(run.taskQueue);
  await p.getByLabel('Workflow Type').fill(run.type);
  await jsonEditor(p).click();
  await p.keyboard.insertText(JSON.stringify(run.input, null, 2));
  await b.shot(`start-form-${run.type}`);
  await submit(p.getByTestId('start-workflow-button'));
  await p.getByText(/workflow started successfully/i).first().waitFor({ timeout: 30_000 });
}

const runUrl = (ui: string, id: string) => `${ui}/namespaces/default/workflows/${encodeURIComponent(id)}`;

/** Reloads `url` until `check` holds: the UI shows a run as of when the page was loaded. */
async function untilShown(p: Page, url: string, what: string, check: () => Promise<boolean>): Promise<void> {
  await waitFor(
    async () => {
      await p.goto(url);
      return check();
    },
    what,
    UI_WAIT,
    1_000,
  );
}

/** The run's current details (step timeline and open gates) as the User Metadata tab renders them. */
async function currentDetails(p: Page): Promise<string> {
  await p.getByTestId('user-metadata-tab').click({ timeout: 15_000 });
  const frame = p.frameLocator('iframe[src*="/render"]').locator('body');
  await frame.waitFor({ timeout: 15_000 });
  return frame.innerText({ timeout: 15_000 });
}

/** Whether the run's page shows `text` within a bound (its parts load one after another). */
function shows(p: Page, text: string, exact = false): Promise<boolean> {
  return p
    .locator('main')
    .getByText(text, { exact })
    .first()
    .waitFor({ timeout: 15_000 })
    .then(
      () => true,
      () => false,
    );
}

/** Whether the status badge at the top of the run's page reads `state`. */
const showsState = (p: Page, state: 'Running' | 'Completed') => shows(p, state, true);

/**
 * Sends an update (or a signal) from the run page's More Actions menu; returns the dialog, which stays open
 * with the validator's message when an update is refused.
 */
async function send(b: Browser, kind: 'update' | 'signal', name: string, payload: unknown, stage: string): Promise<Locator> {
  const p = b.page;
  await p.getByRole('button', { name: 'More Actions' }).first().click();
  await p.getByRole('menuitem', { name: kind === 'update' ? 'Send an Update' : 'Send a Signal' }).click();
  const dialog = p.locator('dialog[open]');
  await dialog.getByTestId(`${kind}-select-button`).click();
  await p.getByRole('option', { name, exact: true }).click();
  await jsonEditor(dialog).click();
  await p.keyboard.insertText(JSON.stringify(payload));
  await b.shot(`${stage}-form`);
  await submit(dialog.getByRole('button', { name: 'Submit' }));
  return dialog;
}

async function approveFromUi(s: Stack, id: string, by: string, kind: 'update' | 'signal' = 'update'): Promise<void> {
  await s.browser.page.goto(runUrl(s.ui, id));
  const dialog = await send(s.browser, kind, 'approve', { gate: 'run', by }, `approve-${kind}`);
  // Accepted: the UI closes the dialog (a refused update keeps it open with the validator's message).
  await expect.poll(() => dialog.count(), { timeout: 30_000, interval: 250 }).toBe(0);
  await s.browser.shot('approved');
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');

describe('the Web UI', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack('plain');
  }, 180_000);
  afterAll(async () => stopStack(s ?? {}), 60_000);
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') await s?.browser.shot(`failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}`);
  });

  it('starts a fleetRun from the Start Workflow form, shows it at its gate, approves it with the update form and shows it complete', async () => {
    const id = unique('ui-fleetrun');
    await startFromForm(s.browser, s.ui, { id, taskQueue: s.taskQueue, type: 'fleetRun', input: README_EXAMPLE });
    const handle = s.env.client.workflow.getHandle(id);
    expect((await handle.describe()).type).toBe('fleetRun');

    let details = '';
    await untilShown(s.browser.page, runUrl(s.ui, id), 'the UI to show the run waiting at its gate', async () => {
      details = await currentDetails(s.browser.page);
      return details.includes('Waiting at gate run');
    });
    expect(details).toContain('run uname -r on 3 host(s) in test');
    expect(details).toContain('approvers: alice, bob; 0/1 approvals');
    expect(await showsState(s.browser.page, 'Running')).toBe(true);
    await s.browser.shot('waiting-at-gate');

    await approveFromUi(s, id, 'alice');
    const result = (await handle.result()) as FleetRunResult;
    expect(result.ok).toBe(true);
    expect(result.summary).toMatchObject({ total: 3, succeeded: 3 });

    await untilShown(s.browser.page, runUrl(s.ui, id), 'the UI to show the run completed', () => showsState(s.browser.page, 'Completed'));
    expect(await shows(s.browser.page, '"ok": true')).toBe(true);
    details = await currentDetails(s.browser.page);
    expect(details).toContain('state: succeeded');
    expect(details).toMatch(/alice approve run/);
    await s.browser.shot('completed');
  }, 300_000);

  it("shows the validator's message when an approval is refused, and the gate stays open", async () => {
    const id = unique('ui-refused');
    await startFromForm(s.browser, s.ui, { id, taskQueue: s.taskQueue, type: 'fleetRun', input: README_EXAMPLE });
    const handle = s.env.client.workflow.getHandle(id);
    try {
      await waitFor(async () => (await status(handle)).state === 'waiting', 'the gate to open', 60_000, 250);
      await s.browser.page.goto(runUrl(s.ui, id));
      const dialog = await send(s.browser, 'update', 'approve', { gate: 'run', by: 'mallory' }, 'refused');
      await dialog.getByText('mallory may not answer gate "run" (allowed: alice, bob)').first().waitFor({ timeout: 30_000 });
      await s.browser.shot('refused');
      const st = await status(handle);
      expect(st.gates.find((g) => g.id === 'run')).toMatchObject({ state: 'open', votes: [] });
    } finally {
      await handle.terminate('test done').catch(() => undefined);
    }
  }, 240_000);

  it('fails a run started from the form with bad input at once, the UI naming each bad field', async () => {
    const id = unique('ui-bad-input');
    await startFromForm(s.browser, s.ui, { id, taskQueue: s.taskQueue, type: 'fleetRun', input: { ...README_EXAMPLE, command: 'uname -r', concurrency: 0 } });
    expect((await failureOf(s.env.client.workflow.getHandle(id))).type).toBe('InvalidInput');
    await untilShown(s.browser.page, runUrl(s.ui, id), 'the UI to show why the run failed', () => shows(s.browser.page, 'invalid input for fleetRun'));
    const text = await s.browser.page.locator('main').innerText();
    expect(text).toContain('- command: Invalid input: expected array, received string');
    expect(text).toContain('- concurrency: Too small: expected number to be >=1');
    await s.browser.shot('bad-input');
  }, 240_000);

  it('answers a gate with the Send a Signal form, for servers with updates switched off', async () => {
    const handle = await s.env.client.workflow.start('fleetRun', { taskQueue: s.taskQueue, workflowId: unique('ui-signal'), args: [README_EXAMPLE] });
    await waitFor(async () => (await status(handle)).state === 'waiting', 'the gate to open', 60_000, 250);
    await approveFromUi(s, handle.workflowId, 'bob', 'signal');
    expect(((await handle.result()) as FleetRunResult).ok).toBe(true);
    expect((await status(handle)).decisions).toMatchObject([{ gate: 'run', action: 'approve', by: 'bob' }]);
  }, 240_000);

  it('filters the list by OpsEnvironment, which runs started from the UI set from their input', async () => {
    const here = unique('ui-here');
    const elsewhere = unique('ui-elsewhere');
    await startFromForm(s.browser, s.ui, { id: here, taskQueue: s.taskQueue, type: 'fleetRun', input: { ...README_EXAMPLE, dryRun: true } });
    await startFromForm(s.browser, s.ui, { id: elsewhere, taskQueue: s.taskQueue, type: 'fleetRun', input: { ...README_EXAMPLE, environment: 'nowhere' } });
    expect(((await s.env.client.workflow.getHandle(here).result()) as FleetRunResult).dryRun).toBe(true);
    expect((await failureOf(s.env.client.workflow.getHandle(elsewhere))).type).toBe('UnknownTarget');

    const p = s.browser.page;
    const listed = async (query: string) => {
      await p.goto(`${s.ui}/namespaces/default/workflows`);
      await p.getByTestId('toggle-manual-query').click();
      await p.getByTestId('manual-search-input').fill(query);
      await p.getByTestId('manual-search-button').click();
      await p.waitForURL(/query=/, { timeout: 15_000 });
      const rows = p.getByTestId('workflows-summary-configurable-table-row');
      await rows.first().waitFor({ timeout: 15_000 });
      return rows.allInnerTexts();
    };
    let rows: string[] = [];
    await waitFor(async () => {
      rows = await listed('OpsEnvironment = "test"');
      return rows.some((r) => r.includes(here));
    }, 'the UI list filtered to OpsEnvironment "test"', UI_WAIT, 1_000);
    expect(rows.some((r) => r.includes(elsewhere))).toBe(false);
    await s.browser.shot('list-filtered-test');

    await waitFor(async () => {
      rows = await listed('OpsEnvironment = "nowhere"');
      return rows.length === 1 && rows[0].includes(elsewhere);
    }, 'the UI list filtered to OpsEnvironment "nowhere"', UI_WAIT, 1_000);
    await s.browser.shot('list-filtered-nowhere');
  }, 300_000);
});

describe('the Web UI with encrypted payloads', () => {
  const keys = `ui-test:${randomBytes(32).toString('base64')}`;
  const codec = new AesGcmCodec(parseKeys(keys, 'test keys'));
  let s: Stack & { codec?: CodecServer };
  beforeAll(async () => {
    s = await startStack('encrypted', {
      codecServer: (origin) => startCodecServer({ codec, origins: [origin] }),
      workerEnv: { OPSFLOW_CODEC_KEYS: keys },
    });
  }, 180_000);
  afterAll(async () => stopStack(s ?? {}), 60_000);
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') await s?.browser.shot(`failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}`);
  });

  it('stores only ciphertext, while the UI shows the decoded input and gate prompt and answers the gate', async () => {
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    const id = unique('ui-encrypted');
    const input = { ...README_EXAMPLE, command: ['echo', marker] };
    // The UI encodes the input through the codec server before it starts the run.
    await startFromForm(s.browser, s.ui, { id, taskQueue: s.taskQueue, type: 'fleetRun', input });

    let details = '';
    await untilShown(s.browser.page, runUrl(s.ui, id), 'the UI to show the decoded gate prompt', async () => {
      details = await currentDetails(s.browser.page);
      return details.includes('Waiting at gate run');
    });
    expect(details).toContain(`run echo ${marker} on 3 host(s) in test`);
    await s.browser.page.getByTestId('history-tab').click();
    expect(await shows(s.browser.page, marker)).toBe(true);
    await s.browser.shot('decoded-input');

    await approveFromUi(s, id, 'bob');
    // A client configured like the CLI with the same keys reads the result.
    const client = new Client({ connection: s.env.connection, dataConverter: { payloadCodecs: [codec] } });
    const result = (await client.workflow.getHandle(id).result()) as FleetRunResult;
    expect(result.ok).toBe(true);
    expect(result.hosts.map((h) => h.stdout.trim())).toEqual([marker, marker, marker]);

    // The plain client (no codec) sees what the server stores.
    const history = await s.env.client.workflow.getHandle(id).fetchHistory();
    const payloads = payloadsIn(history);
    expect(payloads.length).toBeGreaterThan(5);
    // The clear-text payloads allowed are the ones the SDK's core writes itself, not the data converter: a patch
    // marker's patch id (`patched('signed-gates')`) and a local activity marker's bookkeeping (its type, id, attempt
    // and times). The local activity's result, beside it, is encrypted.
    const coreWritten = /markerRecordedEventAttributes\.details\.(patch-data|data)\./;
    expect(payloads.filter((p) => p.encoding !== ENCODING && !coreWritten.test(p.at))).toEqual([]);
    expect(payloads.filter((p) => /markerRecordedEventAttributes\.details\.result\./.test(p.at)).map((p) => p.encoding)).toContain(ENCODING);
    expect(clearText(history)).not.toContain(marker);

    await untilShown(s.browser.page, runUrl(s.ui, id), 'the UI to show the run completed', () => showsState(s.browser.page, 'Completed'));
    expect(await shows(s.browser.page, '"ok": true')).toBe(true);
    await s.browser.shot('completed-decoded');
  }, 300_000);
});

/** Every payload of a history (outside search attributes, which Temporal indexes in clear text), with where it is. */
function payloadsIn(value: unknown, at = 'history', out: { at: string; encoding: string }[] = []): { at: string; encoding: string }[] {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return out;
  const v = value as Record<string, unknown>;
  const encoding = (v.metadata as Record<string, unknown> | undefined)?.encoding;
  if (encoding instanceof Uint8Array) {
    out.push({ at, encoding: Buffer.from(encoding).toString() });
    return out;
  }
  for (const [k, child] of Object.entries(v)) if (k !== 'searchAttributes') payloadsIn(child, `${at}.${k}`, out);
  return out;
}

/** All strings and bytes of a history as text, to look for anything readable. */
function clearText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('latin1');
  if (!value || typeof value !== 'object') return '';
  return Object.values(value as Record<string, unknown>).map(clearText).join('\n');
}
