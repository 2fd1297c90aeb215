// The local Slack Web API double, driven by the real @slack/web-api WebClient (Slack itself is unreachable from here).
import { ErrorCode, LogLevel, WebClient, WebClientEvent, type WebClientOptions } from '@slack/web-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signSlackRequest, startSlackDouble, type SlackDouble } from './support/slackDouble';

let double: SlackDouble;

beforeEach(async () => {
  double = await startSlackDouble();
});
afterEach(async () => {
  await double.stop();
});

/** `null`: a client without a token. */
function client(token: string | null = double.token, extra: WebClientOptions = {}): WebClient {
  return new WebClient(token ?? undefined, {
    slackApiUrl: double.url,
    retryConfig: { retries: 2, factor: 1, minTimeout: 10, maxTimeout: 50 },
    logLevel: LogLevel.ERROR,
    ...extra,
  });
}

const blocks = [
  { type: 'section', text: { type: 'mrkdwn', text: '*Deploy* `web` v42 to prod' } },
  { type: 'actions', elements: [{ type: 'button', action_id: 'approve', text: { type: 'plain_text', text: 'Approve' }, value: 'run-1' }] },
];

describe('Slack Web API double with the real WebClient', () => {
  it('chat.postMessage: form-encoded, bearer token, JSON-encoded blocks decoded, increasing ts, threads', async () => {
    const web = client();
    const parent = await web.chat.postMessage({ channel: 'C0OPS', text: 'Deploy web v42', blocks });
    expect(parent.ok).toBe(true);
    expect(parent.channel).toBe('C0OPS');
    expect(parent.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(parent.message).toMatchObject({ type: 'message', text: 'Deploy web v42', blocks, ts: parent.ts, bot_id: expect.any(String) });

    const reply = await web.chat.postMessage({ channel: 'C0OPS', text: 'started', thread_ts: parent.ts! });
    expect(reply.ts! > parent.ts!).toBe(true);
    expect(reply.message).toMatchObject({ thread_ts: parent.ts });

    expect(double.messages.get(`C0OPS:${parent.ts}`)).toEqual({ channel: 'C0OPS', ts: parent.ts, text: 'Deploy web v42', blocks, updates: 0 });
    expect(double.messages.get(`C0OPS:${reply.ts}`)).toMatchObject({ thread_ts: parent.ts, text: 'started' });

    const [first] = double.calls;
    expect(first).toMatchObject({ method: 'chat.postMessage', token: double.token, status: 200, contentType: 'application/x-www-form-urlencoded' });
    // WebClient JSON-encodes blocks into a form field; the double hands them back as the array.
    expect(first.args.blocks).toEqual(blocks);
    expect(first.args).not.toHaveProperty('token');
  });

  it('chat.postMessage argument errors', async () => {
    const web = client();
    await expect(web.chat.postMessage({ channel: '', text: 'x' })).rejects.toMatchObject({ code: ErrorCode.PlatformError, data: { ok: false, error: 'channel_not_found' } });
    await expect(web.apiCall('chat.postMessage', { channel: 'C0OPS' })).rejects.toMatchObject({ data: { error: 'no_text' } });
    expect(double.messages.size).toBe(0);
  });

  it('chat.update replaces text and blocks and counts updates; unknown ts is message_not_found', async () => {
    const web = client();
    const posted = await web.chat.postMessage({ channel: 'C0OPS', text: 'Deploy web v42', blocks });
    const newBlocks = [{ type: 'section', text: { type: 'mrkdwn', text: 'Approved by <@U1>' } }];
    const updated = await web.chat.update({ channel: 'C0OPS', ts: posted.ts!, text: 'Approved', blocks: newBlocks });
    expect(updated).toMatchObject({ ok: true, channel: 'C0OPS', ts: posted.ts, text: 'Approved', message: { text: 'Approved', blocks: newBlocks } });
    await web.chat.update({ channel: 'C0OPS', ts: posted.ts!, text: 'Done' });
    // Omitting blocks keeps the previous ones, as on Slack.
    expect(double.messages.get(`C0OPS:${posted.ts}`)).toMatchObject({ text: 'Done', blocks: newBlocks, updates: 2 });

    await expect(web.chat.update({ channel: 'C0OPS', ts: '1600000000.000001', text: 'x' })).rejects.toMatchObject({ data: { error: 'message_not_found' } });
  });

  it('chat.postEphemeral returns message_ts and records the ephemeral', async () => {
    const res = await client().chat.postEphemeral({ channel: 'C0OPS', user: 'U0ALICE', text: 'Only you can see this', blocks });
    expect(res.ok).toBe(true);
    expect(res.message_ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(double.ephemerals).toEqual([{ channel: 'C0OPS', user: 'U0ALICE', text: 'Only you can see this', blocks }]);
    expect(double.messages.size).toBe(0);
  });

  it('usergroups.users.list returns the group, no_such_subteam otherwise', async () => {
    double.setUserGroup('S0ONCALL', ['U0ALICE', 'U0BOB']);
    const web = client();
    expect((await web.usergroups.users.list({ usergroup: 'S0ONCALL' })).users).toEqual(['U0ALICE', 'U0BOB']);
    await expect(web.usergroups.users.list({ usergroup: 'S0NOPE' })).rejects.toMatchObject({ data: { error: 'no_such_subteam' } });
  });

  it('views.open decodes the view, assigns an id and records it', async () => {
    const view = {
      type: 'modal' as const,
      callback_id: 'approve_deploy',
      title: { type: 'plain_text' as const, text: 'Approve deploy' },
      submit: { type: 'plain_text' as const, text: 'Approve' },
      private_metadata: JSON.stringify({ runId: 'run-1' }),
      blocks: [{ type: 'input' as const, block_id: 'reason', label: { type: 'plain_text' as const, text: 'Reason' }, element: { type: 'plain_text_input' as const, action_id: 'value' } }],
    };
    const res = await client().views.open({ trigger_id: '12345.98765.abcd2358fdea', view });
    expect(res.view).toMatchObject({ id: expect.stringMatching(/^V/), ...view });
    expect(double.views).toHaveLength(1);
    expect(double.views[0].trigger_id).toBe('12345.98765.abcd2358fdea');
    expect(double.views[0].view).toMatchObject({ id: res.view!.id, callback_id: 'approve_deploy', blocks: view.blocks });
  });

  it('unknown methods are ok:false unknown_method', async () => {
    await expect(client().apiCall('nope.method', {})).rejects.toMatchObject({ code: ErrorCode.PlatformError, data: { error: 'unknown_method' } });
  });

  it('a wrong token is invalid_auth, no token is not_authed', async () => {
    await expect(client('xoxb-wrong').chat.postMessage({ channel: 'C0OPS', text: 'x' })).rejects.toMatchObject({
      code: ErrorCode.PlatformError,
      data: { ok: false, error: 'invalid_auth' },
    });
    await expect(client(null).chat.postMessage({ channel: 'C0OPS', text: 'x' })).rejects.toMatchObject({ data: { error: 'not_authed' } });
    expect(double.calls.map((c) => [c.token, c.status])).toEqual([['xoxb-wrong', 200], [undefined, 200]]);
    expect(double.messages.size).toBe(0);
  });

  it('accepts application/json with a bearer token and a form body with a token field', async () => {
    const json = await fetch(`${double.url}chat.postMessage`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json; charset=utf-8', Authorization: `Bearer ${double.token}` },
      body: JSON.stringify({ channel: 'C0OPS', text: 'json', blocks }),
    });
    expect(json.status).toBe(200);
    const body = (await json.json()) as { ok: boolean; ts: string; message: { blocks: unknown[] } };
    expect(body.ok).toBe(true);
    expect(body.message.blocks).toEqual(blocks);

    const form = await fetch(`${double.url}chat.postMessage`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: double.token, channel: 'C0OPS', text: 'form' }).toString(),
    });
    expect(await form.json()).toMatchObject({ ok: true });
    expect(double.calls.map((c) => c.contentType)).toEqual(['application/json', 'application/x-www-form-urlencoded']);
  });

  it('HTTP 429 with Retry-After: WebClient waits and retries, and the call succeeds', async () => {
    double.failNext('chat.postMessage', { status: 429, retryAfter: 1 });
    const web = client();
    const rateLimited: number[] = [];
    web.on(WebClientEvent.RATE_LIMITED, (retrySec: number) => rateLimited.push(retrySec));
    const res = await web.chat.postMessage({ channel: 'C0OPS', text: 'after the limit' });
    expect(res.ok).toBe(true);
    expect(rateLimited).toEqual([1]);
    expect(double.calls.map((c) => [c.method, c.status])).toEqual([
      ['chat.postMessage', 429],
      ['chat.postMessage', 200],
    ]);
    expect(double.messages.size).toBe(1);
  });

  it('with rejectRateLimitedCalls, a 429 surfaces as a rate-limited error carrying Retry-After', async () => {
    double.failNext('chat.postMessage', { status: 429, retryAfter: 7 });
    await expect(client(double.token, { rejectRateLimitedCalls: true }).chat.postMessage({ channel: 'C0OPS', text: 'x' })).rejects.toMatchObject({
      code: ErrorCode.RateLimitedError,
      retryAfter: 7,
    });
    expect(double.calls.map((c) => c.status)).toEqual([429]);
  });

  it('HTTP 500 is retried; persistent 500s exhaust the retries with an HTTP error', async () => {
    const web = client();
    double.failNext('chat.update', { status: 500 });
    const posted = await web.chat.postMessage({ channel: 'C0OPS', text: 'v1' });
    await web.chat.update({ channel: 'C0OPS', ts: posted.ts!, text: 'v2' });
    expect(double.calls.map((c) => [c.method, c.status])).toEqual([
      ['chat.postMessage', 200],
      ['chat.update', 500],
      ['chat.update', 200],
    ]);
    expect(double.messages.get(`C0OPS:${posted.ts}`)).toMatchObject({ text: 'v2', updates: 1 });

    double.failAlways('usergroups.users.list', { status: 500 });
    double.setUserGroup('S0ONCALL', ['U0ALICE']);
    await expect(web.usergroups.users.list({ usergroup: 'S0ONCALL' })).rejects.toMatchObject({ code: ErrorCode.HTTPError, statusCode: 500 });
    // retries: 2 → three attempts.
    expect(double.calls.filter((c) => c.method === 'usergroups.users.list').map((c) => c.status)).toEqual([500, 500, 500]);
    double.clearFailures();
    expect((await web.usergroups.users.list({ usergroup: 'S0ONCALL' })).users).toEqual(['U0ALICE']);
  });

  it('injected ok:false errors surface as platform errors and are not retried', async () => {
    double.failNext('chat.postMessage', { error: 'channel_not_found' }, 2);
    const web = client();
    for (let i = 0; i < 2; i++) {
      await expect(web.chat.postMessage({ channel: 'C0OPS', text: 'x' })).rejects.toMatchObject({ code: ErrorCode.PlatformError, data: { error: 'channel_not_found' } });
    }
    expect(double.calls.map((c) => c.status)).toEqual([200, 200]);
    expect((await web.chat.postMessage({ channel: 'C0OPS', text: 'x' })).ok).toBe(true);
  });
});

describe('signSlackRequest', () => {
  it("reproduces Slack's worked example", () => {
    // docs.slack.dev/authentication/verifying-requests-from-slack
    const body =
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    expect(signSlackRequest('8f742231b10e8888abcd99yyyzzz85a5', body, 1531420618)).toEqual({
      'x-slack-request-timestamp': '1531420618',
      'x-slack-signature': 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
    });
  });

  it('defaults the timestamp to now', () => {
    const now = Math.floor(Date.now() / 1000);
    const ts = Number(signSlackRequest('secret', 'payload=%7B%7D')['x-slack-request-timestamp']);
    expect(Math.abs(ts - now)).toBeLessThanOrEqual(2);
  });
});
