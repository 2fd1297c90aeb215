// A local double of Slack's Web API, for tests that drive the real @slack/web-api WebClient against loopback.
//
// Shapes follow docs.slack.dev/reference/methods/<method>: every answer is HTTP 200 with `{ok: true, ...}` or
// `{ok: false, error}`, except rate limiting (HTTP 429 + Retry-After, in seconds) and injected server errors.
// Requests arrive as WebClient sends them: POST, application/x-www-form-urlencoded, `Authorization: Bearer <token>`,
// non-primitive arguments (blocks, attachments, view, metadata) as JSON-encoded strings. application/json bodies
// (token only in the Authorization header, as Slack requires for JSON) and a `token` form field are accepted too.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  token?: string;
  at: number;
  status: number;
  /** The request's media type (without parameters), e.g. `application/x-www-form-urlencoded`. */
  contentType?: string;
}
export interface SlackMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown[];
  thread_ts?: string;
  updates: number;
}
export type SlackFailure = { status: 429; retryAfter: number } | { status: 500 } | { error: string };
export interface SlackDouble {
  /** e.g. http://127.0.0.1:PORT/api/ — what WebClient's slackApiUrl takes. */
  url: string;
  /** The only bot token it accepts (others: ok:false invalid_auth; none: not_authed). */
  token: string;
  /** Every call in order, including failed and rate-limited ones. */
  calls: SlackCall[];
  /** Keyed `${channel}:${ts}`: current state after postMessage/update. */
  messages: Map<string, SlackMessage>;
  ephemerals: { channel: string; user: string; text?: string; blocks?: unknown[] }[];
  views: { trigger_id: string; view: any }[];
  /** The next `times` calls of `method` fail: HTTP 429 with Retry-After (seconds), HTTP 500, or HTTP 200 ok:false with the error code. */
  failNext(method: string, failure: SlackFailure, times?: number): void;
  /** Failure for every call of `method` until cleared with clearFailures(). */
  failAlways(method: string, failure: SlackFailure): void;
  clearFailures(): void;
  setUserGroup(id: string, users: string[]): void;
  stop(): Promise<void>;
}

const TEAM_ID = 'T0DOUBLE01';
const BOT_ID = 'B0DOUBLE01';
const BOT_USER = 'U0DOUBLEBOT';
const APP_ID = 'A0DOUBLE01';
/** Arguments Slack takes as JSON (WebClient JSON-encodes every non-primitive argument), with the error a bad one gets. */
const JSON_ARGS: Record<string, string> = {
  blocks: 'invalid_blocks_format',
  attachments: 'invalid_attachments',
  view: 'invalid_arguments',
  metadata: 'invalid_metadata_format',
};

type Reply = { status: number; body: Record<string, unknown>; headers?: Record<string, string> };
const ok = (body: Record<string, unknown> = {}): Reply => ({ status: 200, body: { ok: true, ...body } });
const fail = (error: string): Reply => ({ status: 200, body: { ok: false, error } });

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
const nonEmptyArray = (v: unknown): v is unknown[] => Array.isArray(v) && v.length > 0;

/**
 * Slack's v0 request signature: `v0=` + hex HMAC-SHA256 over `v0:${timestamp}:${body}`, keyed by the signing secret
 * (docs.slack.dev/authentication/verifying-requests-from-slack).
 */
export function signSlackRequest(
  signingSecret: string,
  body: string,
  timestamp: number = Math.floor(Date.now() / 1000),
): { 'x-slack-request-timestamp': string; 'x-slack-signature': string } {
  const ts = String(timestamp);
  const sig = createHmac('sha256', signingSecret).update(`v0:${ts}:${body}`).digest('hex');
  return { 'x-slack-request-timestamp': ts, 'x-slack-signature': `v0=${sig}` };
}

export async function startSlackDouble(opts: { token?: string } = {}): Promise<SlackDouble> {
  const token = opts.token ?? 'xoxb-0000000000-0000000000000-doubletoken00000000000';
  const calls: SlackCall[] = [];
  const messages = new Map<string, SlackMessage>();
  const ephemerals: SlackDouble['ephemerals'] = [];
  const views: SlackDouble['views'] = [];
  const groups = new Map<string, string[]>();
  const nextFailures = new Map<string, { failure: SlackFailure; remaining: number }[]>();
  const alwaysFailures = new Map<string, SlackFailure>();

  // Message timestamps: "1700000000.000100", "1700000000.000200", ... — strictly increasing, same width.
  let tsSeq = 0;
  const nextTs = (): string => {
    tsSeq += 1;
    const micros = tsSeq * 100;
    return `${1_700_000_000 + Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, '0')}`;
  };
  let viewSeq = 0;

  function injectedFailure(method: string): Reply | undefined {
    let failure: SlackFailure | undefined;
    const queue = nextFailures.get(method);
    if (queue && queue.length > 0) {
      const head = queue[0];
      failure = head.failure;
      head.remaining -= 1;
      if (head.remaining <= 0) queue.shift();
    } else {
      failure = alwaysFailures.get(method);
    }
    if (!failure) return undefined;
    if ('error' in failure) return fail(failure.error);
    if (failure.status === 429) {
      return { status: 429, body: { ok: false, error: 'ratelimited' }, headers: { 'Retry-After': String(failure.retryAfter) } };
    }
    return { status: 500, body: { ok: false, error: 'internal_error' } };
  }

  function messageView(m: SlackMessage): Record<string, unknown> {
    return {
      type: 'message',
      text: m.text ?? '',
      ...(m.blocks ? { blocks: m.blocks } : {}),
      ts: m.ts,
      ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
      bot_id: BOT_ID,
      user: BOT_USER,
      app_id: APP_ID,
      team: TEAM_ID,
    };
  }

  const hasContent = (a: Record<string, unknown>) => str(a.text) !== undefined || nonEmptyArray(a.blocks) || nonEmptyArray(a.attachments);

  const methods: Record<string, (a: Record<string, unknown>) => Reply> = {
    'chat.postMessage'(a) {
      const channel = str(a.channel);
      if (!channel) return fail('channel_not_found');
      if (!hasContent(a)) return fail('no_text');
      const ts = nextTs();
      const m: SlackMessage = {
        channel,
        ts,
        ...(typeof a.text === 'string' ? { text: a.text } : {}),
        ...(nonEmptyArray(a.blocks) ? { blocks: a.blocks } : {}),
        ...(str(a.thread_ts) ? { thread_ts: str(a.thread_ts) } : {}),
        updates: 0,
      };
      messages.set(`${channel}:${ts}`, m);
      return ok({ channel, ts, message: messageView(m) });
    },
    'chat.update'(a) {
      const channel = str(a.channel);
      if (!channel) return fail('channel_not_found');
      const ts = str(a.ts);
      const m = ts ? messages.get(`${channel}:${ts}`) : undefined;
      if (!m) return fail('message_not_found');
      if (!hasContent(a)) return fail('no_text');
      if (typeof a.text === 'string') m.text = a.text;
      // Omitted blocks keep the old ones; an empty array removes them.
      if (Array.isArray(a.blocks)) m.blocks = a.blocks.length > 0 ? a.blocks : undefined;
      m.updates += 1;
      return ok({ channel, ts: m.ts, text: m.text ?? '', message: messageView(m) });
    },
    'chat.postEphemeral'(a) {
      const channel = str(a.channel);
      if (!channel) return fail('channel_not_found');
      const user = str(a.user);
      if (!user) return fail('user_not_found');
      if (!hasContent(a)) return fail('no_text');
      ephemerals.push({
        channel,
        user,
        ...(typeof a.text === 'string' ? { text: a.text } : {}),
        ...(nonEmptyArray(a.blocks) ? { blocks: a.blocks } : {}),
      });
      return ok({ message_ts: nextTs() });
    },
    'usergroups.users.list'(a) {
      const id = str(a.usergroup);
      const users = id ? groups.get(id) : undefined;
      if (!users) return fail('no_such_subteam');
      return ok({ users: [...users] });
    },
    'views.open'(a) {
      const trigger = str(a.trigger_id) ?? str(a.interactivity_pointer);
      if (!trigger) return fail('invalid_arguments');
      const view = a.view;
      if (typeof view !== 'object' || view === null || Array.isArray(view)) return fail('invalid_arguments');
      viewSeq += 1;
      const id = `V0DBL${String(viewSeq).padStart(6, '0')}`;
      const opened = {
        id,
        team_id: TEAM_ID,
        ...(view as Record<string, unknown>),
        state: { values: {} },
        hash: `${Math.floor(Date.now() / 1000)}.${id.toLowerCase()}`,
        root_view_id: id,
        app_id: APP_ID,
        bot_id: BOT_ID,
      };
      views.push({ trigger_id: trigger, view: opened });
      return ok({ view: opened });
    },
  };

  function readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = /^\/api\/([A-Za-z0-9_.]+)$/.exec(url.pathname);
    if (!match || (req.method !== 'POST' && req.method !== 'GET')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    const method = match[1];
    const raw = await readBody(req);
    const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();

    let args: Record<string, unknown> = Object.fromEntries(url.searchParams);
    let parseError: string | undefined;
    let formToken: string | undefined;
    if (raw.length > 0) {
      if (contentType === 'application/json') {
        try {
          const parsed: unknown = JSON.parse(raw);
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) parseError = 'invalid_json';
          else args = { ...args, ...(parsed as Record<string, unknown>) };
        } catch {
          parseError = 'invalid_json';
        }
      } else if (contentType === 'application/x-www-form-urlencoded' || contentType === '') {
        const form = Object.fromEntries(new URLSearchParams(raw));
        args = { ...args, ...form };
        formToken = str(form.token);
      } else {
        parseError = 'invalid_form_data';
      }
    }
    if (contentType !== 'application/json') formToken ??= str(args.token);
    delete args.token;
    for (const [field, error] of Object.entries(JSON_ARGS)) {
      if (typeof args[field] !== 'string') continue;
      try {
        args[field] = JSON.parse(args[field] as string);
      } catch {
        parseError ??= error;
      }
    }

    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    const callToken = bearer ?? formToken;

    let reply: Reply;
    const injected = injectedFailure(method);
    if (injected) reply = injected;
    else if (!callToken) reply = fail('not_authed');
    else if (callToken !== token) reply = fail('invalid_auth');
    else if (parseError) reply = fail(parseError);
    else if (!Object.hasOwn(methods, method)) reply = fail('unknown_method');
    else reply = methods[method](args);

    calls.push({ method, args, ...(callToken ? { token: callToken } : {}), at, status: reply.status, ...(contentType ? { contentType } : {}) });
    res.writeHead(reply.status, { 'Content-Type': 'application/json; charset=utf-8', ...reply.headers });
    res.end(JSON.stringify(reply.body));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/api/`,
    token,
    calls,
    messages,
    ephemerals,
    views,
    failNext(method, failure, times = 1) {
      if (times <= 0) return;
      const queue = nextFailures.get(method) ?? [];
      queue.push({ failure, remaining: times });
      nextFailures.set(method, queue);
    },
    failAlways(method, failure) {
      alwaysFailures.set(method, failure);
    },
    clearFailures() {
      nextFailures.clear();
      alwaysFailures.clear();
    },
    setUserGroup(id, users) {
      groups.set(id, [...users]);
    },
    stop() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // WebClient's fetch keeps connections alive; close them so close() completes.
        server.closeAllConnections();
      });
    },
  };
}
