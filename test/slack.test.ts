// Slack: gate messages with buttons, signed clicks through the interactivity endpoint, announcements in one
// thread per run. The real @slack/web-api client talks to a local double of Slack's Web API (Slack itself is
// out of reach here); clicks are real HTTP requests signed exactly as Slack signs them.
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../src/config/inventory';
import type { FleetRunInput } from '../src/schemas/fleetRun';
import { serveInteractivity } from '../src/slack/interactivity';
import { slackClient, type SlackSettings } from '../src/slack/settings';
import type { fleetRun } from '../src/workflows/fleetRun';
import type { RunStatus } from '../src/runbook/protocol';
import { failureOf, recordHistory, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { signSlackRequest, startSlackDouble, type SlackDouble, type SlackMessage } from './support/slackDouble';

const SIGNING_SECRET = `signing-${unique('secret')}`;
const CHANNEL = 'C0OPS';
let env: TestWorkflowEnvironment;
let slack: SlackDouble;
let settings: SlackSettings;
let endpoint: { url: string; close(): Promise<void> };
const workers: { stop(): Promise<void> }[] = [];
const queue = unique('slack');
const quietQueue = unique('noslack');

beforeAll(async () => {
  env = await testEnv();
  slack = await startSlackDouble();
  settings = { token: slack.token, signingSecret: SIGNING_SECRET, apiUrl: slack.url };
  const inventory = writeInventory({ people: { alice: { slack: 'U0ALICE' }, bob: { slack: 'U0BOB' } }, notify: { channel: CHANNEL } });
  workers.push(await startWorker(env, inventory, queue, settings));
  workers.push(await startWorker(env, inventory, quietQueue));
  endpoint = await serveInteractivity({ temporal: env.client, slack: slackClient(settings), signingSecret: SIGNING_SECRET, inventory: loadInventory(inventory) }, { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await endpoint?.close();
  for (const w of workers) await w.stop();
  await slack?.stop();
  await env?.teardown();
});

type Handle = WorkflowHandle<typeof fleetRun>;

function start(input: Partial<FleetRunInput>, taskQueue = queue): Promise<Handle> {
  return env.client.workflow.start<typeof fleetRun>('fleetRun', {
    taskQueue,
    workflowId: unique('slackrun'),
    args: [{ environment: 'test', target: { hosts: ['h1'] }, command: ['true'], notify: {}, ...input } as FleetRunInput],
  });
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const mentions = (m: SlackMessage, id: string) => JSON.stringify(m.blocks ?? m.text).includes(id);
const buttons = (m: SlackMessage) => (m.blocks as { type: string; elements?: { action_id: string; value: string }[] }[] | undefined)?.find((b) => b.type === 'actions')?.elements ?? [];

/** The gate's message, once the workflow has posted it. */
function gateMessage(h: Handle): Promise<SlackMessage> {
  return waitFor(() => [...slack.messages.values()].find((m) => mentions(m, h.workflowId) && buttons(m).length > 0), `the gate message of ${h.workflowId}`);
}

/** The gate's message once the gate closed: the buttons are gone. */
function closedMessage(message: SlackMessage): Promise<SlackMessage> {
  return waitFor(() => {
    const m = slack.messages.get(`${message.channel}:${message.ts}`);
    return m && buttons(m).length === 0 ? m : undefined;
  }, 'the message update');
}

function clickBody(user: string, actionId: string, value: string, extra: Record<string, unknown> = {}): string {
  const payload = { type: 'block_actions', user: { id: user }, channel: { id: CHANNEL }, trigger_id: unique('trigger'), actions: [{ action_id: actionId, value }], ...extra };
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

async function post(body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(endpoint.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
  return { status: res.status, text: await res.text() };
}

const signed = (body: string, ts?: number) => post(body, signSlackRequest(SIGNING_SECRET, body, ts));

async function click(h: Handle, user: string, which: 'Approve' | 'Reject…' | 'Retry' | 'Abort' | 'Skip') {
  const message = await gateMessage(h);
  const button = buttons(message).find((b) => JSON.stringify(b).includes(`"${which}"`));
  if (!button) throw new Error(`no ${which} button`);
  return signed(clickBody(user, button.action_id, button.value));
}

const lastEphemeral = (user: string) => [...slack.ephemerals].reverse().find((e) => e.user === user)?.text ?? '';

describe('Slack gates', () => {
  it('a signed Approve click unblocks the run; the message shows the decision and loses its buttons', async () => {
    const h = await start({ approval: { approvers: ['alice'] } });
    const message = await gateMessage(h);
    expect(message.channel).toBe(CHANNEL);
    expect(JSON.stringify(message.blocks)).toContain('May answer: alice');
    const res = await click(h, 'U0ALICE', 'Approve');
    expect(res.status).toBe(200);
    expect((await h.result()).ok).toBe(true);
    expect(lastEphemeral('U0ALICE')).toContain('You approved gate `run`: approved');
    const updated = await closedMessage(message);
    expect(JSON.stringify(updated.blocks)).toContain('Approved by alice');
    expect((await status(h)).decisions).toEqual([expect.objectContaining({ by: 'alice', action: 'approve', comment: 'from Slack' })]);
    recordHistory(h, 'fleetRun-slack-approved');
  });

  it('announces the run in one thread: start, phases, the gate, success', async () => {
    const h = await start({});
    await h.result();
    const run = [...slack.messages.values()].filter((m) => (m.text ?? '').includes(h.workflowId) || JSON.stringify(m.blocks ?? '').includes(h.workflowId));
    const root = run.find((m) => !m.thread_ts);
    expect(root?.text).toContain('started');
    const replies = [...slack.messages.values()].filter((m) => m.thread_ts === root?.ts).map((m) => m.text ?? '');
    expect(replies.some((t) => t.includes('phase: run'))).toBe(true);
    expect(replies.some((t) => t.includes('succeeded'))).toBe(true);
  });

  it('refuses forged, stale, replayed and unsigned clicks; nothing changes in the run', async () => {
    const h = await start({ approval: { approvers: ['alice'] } });
    const message = await gateMessage(h);
    const approve = buttons(message)[0];
    const body = clickBody('U0ALICE', approve.action_id, approve.value);
    expect(await post(body, {})).toMatchObject({ status: 401, text: 'missing Slack signature headers' });
    expect(await post(body, signSlackRequest('not-the-secret', body))).toMatchObject({ status: 401, text: 'bad signature' });
    const tampered = signSlackRequest(SIGNING_SECRET, body);
    expect(await post(clickBody('U0ALICE', approve.action_id, approve.value, { extra: 1 }), tampered)).toMatchObject({ status: 401, text: 'bad signature' });
    expect(await signed(body, Math.floor(Date.now() / 1000) - 6 * 60)).toMatchObject({ status: 401, text: 'request timestamp is more than five minutes off' });
    const st = await status(h);
    expect(st.state).toBe('waiting');
    expect(st.decisions).toEqual([]);
    // The same signed request twice: the second is a replay.
    const headers = signSlackRequest(SIGNING_SECRET, body);
    expect((await post(body, headers)).status).toBe(200);
    expect(await post(body, headers)).toMatchObject({ status: 401, text: 'replayed request' });
    expect((await h.result()).ok).toBe(true);
  });

  it('tells a clicker who may not answer, or already voted, why; the run keeps waiting', async () => {
    const h = await start({ approval: { approvers: ['alice', 'bob'], quorum: 2 } });
    await click(h, 'U0MALLORY', 'Approve');
    expect(lastEphemeral('U0MALLORY')).toContain('refused: slack:U0MALLORY may not answer gate "run" (allowed: alice, bob)');
    await click(h, 'U0ALICE', 'Approve');
    expect(lastEphemeral('U0ALICE')).toContain('(1/2 approvals)');
    await click(h, 'U0ALICE', 'Approve');
    expect(lastEphemeral('U0ALICE')).toContain('refused: alice has already voted on gate "run"');
    const st = await status(h);
    expect(st.state).toBe('waiting');
    expect(st.decisions.map((d) => d.by)).toEqual(['alice']);
    await click(h, 'U0BOB', 'Approve');
    expect((await h.result()).ok).toBe(true);
  });

  it('a member of a Slack user group listed on the gate may approve', async () => {
    slack.setUserGroup('S0ONCALL', ['U0CAROL']);
    const h = await start({ approval: { approverGroups: ['S0ONCALL'] } });
    await click(h, 'U0DAVE', 'Approve');
    expect(lastEphemeral('U0DAVE')).toContain('may not answer');
    await click(h, 'U0CAROL', 'Approve');
    expect((await h.result()).ok).toBe(true);
    expect((await status(h)).decisions[0]).toMatchObject({ by: 'slack:U0CAROL', action: 'approve' });
  });

  it('Reject asks for a reason in a modal, then rejects with it', async () => {
    const h = await start({ approval: { approvers: ['bob'] } });
    await click(h, 'U0BOB', 'Reject…');
    const view = await waitFor(() => slack.views[slack.views.length - 1]?.view, 'the modal');
    expect(view.callback_id).toBe('opsflow_reject');
    const submit = (user: string, reason: string) =>
      signed(`payload=${encodeURIComponent(JSON.stringify({ type: 'view_submission', user: { id: user }, view: { callback_id: 'opsflow_reject', private_metadata: view.private_metadata, state: { values: { reason: { reason: { value: reason } } } } } }))}`);
    const refused = await submit('U0MALLORY', 'nope');
    expect(JSON.parse(refused.text)).toMatchObject({ response_action: 'errors', errors: { reason: expect.stringContaining('may not answer') } });
    expect((await submit('U0BOB', 'error rate is up')).text).toBe('');
    const { type, message } = await failureOf(h);
    expect(type).toBe('Rejected');
    expect(message).toContain('rejected by bob: error rate is up');
  });

  it('reminders and escalation are replies in the gate message thread', async () => {
    const h = await start({ approval: { approvers: ['alice'], remindEvery: '1s', escalateAfter: '2s', escalateTo: ['bob'] } });
    const message = await gateMessage(h);
    const replies = () => [...slack.messages.values()].filter((m) => m.thread_ts === message.ts).map((m) => m.text ?? '');
    await waitFor(() => replies().some((t) => t.startsWith('Reminder: still waiting for approval (0/1)')), 'a reminder in the thread', 15_000);
    await waitFor(() => replies().some((t) => t.startsWith('Escalated') && t.includes('bob may now approve too')), 'the escalation in the thread', 15_000);
    await click(h, 'U0BOB', 'Approve');
    expect((await h.result()).ok).toBe(true);
  });

  it('failure gates get Retry / Skip / Abort buttons', async () => {
    const h = await start({ command: ['false'] });
    await click(h, 'U0ALICE', 'Abort');
    expect((await failureOf(h)).type).toBe('Aborted');
  });

  it('a gate closed from the CLI or by its timeout updates the message; a later click is told it is closed', async () => {
    const h = await start({ approval: {} });
    const message = await gateMessage(h);
    const approve = buttons(message)[0];
    await h.executeUpdate('approve', { args: [{ by: 'carol' }] });
    await h.result();
    const updated = await closedMessage(message);
    expect(JSON.stringify(updated.blocks)).toContain('Approved by carol');
    await signed(clickBody('U0ALICE', approve.action_id, approve.value));
    expect(lastEphemeral('U0ALICE')).toContain('refused: this run has already ended');

    const timed = await start({ approval: { timeout: '1s' } });
    const timedMessage = await gateMessage(timed);
    expect((await failureOf(timed)).type).toBe('Rejected');
    const closed = await closedMessage(timedMessage);
    expect(JSON.stringify(closed.blocks)).toContain('Timed out');
  });
});

describe('Slack failures and absence', () => {
  it('Slack answering 500 or 429 neither fails nor holds up the run', async () => {
    slack.failAlways('chat.postMessage', { status: 500 });
    try {
      const h = await start({});
      const result = await h.result();
      expect(result.ok).toBe(true);
      const failed = slack.calls.filter((c) => c.method === 'chat.postMessage' && c.status === 500);
      expect(failed.length).toBeGreaterThan(0);
      // The host step started before Slack had stopped failing: the run did not wait for it.
      const ran = (await status(h)).steps.find((s) => s.host === 'h1');
      expect(Date.parse(ran?.startedAt ?? '')).toBeLessThan(failed[failed.length - 1].at);
    } finally {
      slack.clearFailures();
    }
    slack.failNext('chat.postMessage', { status: 429, retryAfter: 1 }, 1);
    const h = await start({});
    expect((await h.result()).ok).toBe(true);
    await waitFor(() => [...slack.messages.values()].some((m) => (m.text ?? '').includes(h.workflowId)), 'the rate-limited post to go through after Retry-After');
  });

  it('with no Slack configured, gates work from the CLI and nothing tries to post', async () => {
    const before = slack.calls.length;
    const h = await start({ approval: { approvers: ['alice'] } }, quietQueue);
    await waitFor(async () => (await status(h)).state === 'waiting', 'the gate');
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    expect((await h.result()).ok).toBe(true);
    expect(slack.calls.length).toBe(before);
  });

  it('the bot token and signing secret never reach history', async () => {
    const h = await start({ approval: { approvers: ['alice'] } });
    await click(h, 'U0ALICE', 'Approve');
    await h.result();
    const history = JSON.stringify(await h.fetchHistory());
    expect(history).not.toContain(slack.token);
    expect(history).not.toContain(SIGNING_SECRET);
  });
});
