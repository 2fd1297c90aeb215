// Slack's interactivity endpoint: button clicks and the reject modal become the workflow's approve / reject /
// resolve updates. Nothing is believed before Slack's signature checks out; the gate's own validator then
// decides, and its verdict goes back to the person who clicked.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { WebClient } from '@slack/web-api';
import { log } from '../common/log';
import type { Inventory } from '../config/inventory';
import type { UpdateDefinition } from '@temporalio/common';
import { ANSWERS, statusQuery, type AnswerMessage, type AnswerPayload, type VoteResult } from '../runbook/protocol';
import type { KeySigner } from '../runbook/signatures/signer';
import { ACTIONS, rejectModal, type ButtonValue } from './blocks';
import { vouch } from './bridge';

const MAX_AGE_S = 5 * 60;
const MAX_BODY = 1024 * 1024;

export interface InteractivityDeps {
  temporal: Client;
  slack: WebClient;
  signingSecret: string;
  inventory: Inventory;
  /** The bridge's key (OPSFLOW_SLACK_SIGNING_KEY_FILE): when set, every answer goes out signed by it (./bridge.ts). */
  bridge?: KeySigner;
  /** Seconds since the epoch; tests move time. */
  now?: () => number;
}

/**
 * Slack's v0 scheme: HMAC-SHA256 over `v0:<timestamp>:<raw body>` with the signing secret, compared in constant
 * time, the timestamp no more than five minutes off. Returns why a request is refused, or undefined.
 */
export function signatureProblem(secret: string, timestamp: string | undefined, signature: string | undefined, body: string, nowS: number): string | undefined {
  if (!timestamp || !signature) return 'missing Slack signature headers';
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowS - ts) > MAX_AGE_S) return 'request timestamp is more than five minutes off';
  const expected = Buffer.from(`v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`);
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad signature';
  return undefined;
}

/** Signatures seen in the last five minutes: a captured request sent again is refused. */
class ReplayGuard {
  private readonly seen = new Map<string, number>();
  fresh(signature: string, nowS: number): boolean {
    for (const [sig, at] of this.seen) if (nowS - at > MAX_AGE_S) this.seen.delete(sig);
    if (this.seen.has(signature)) return false;
    this.seen.set(signature, nowS);
    return true;
  }
}

interface SlackPayload {
  type: string;
  user: { id: string };
  channel?: { id: string };
  trigger_id?: string;
  actions?: { action_id: string; value: string }[];
  view?: { callback_id: string; private_metadata: string; state: { values: Record<string, Record<string, { value?: string }>> } };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function verdictOf(err: unknown): string {
  if (err instanceof WorkflowUpdateFailedError) return `refused: ${(err.cause as Error | undefined)?.message ?? err.message}`;
  if (err instanceof WorkflowNotFoundError) return 'refused: this run has already ended';
  return `could not reach the run: ${(err as Error).message}`;
}

export function createInteractivityHandler(deps: InteractivityDeps): http.RequestListener {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const replays = new ReplayGuard();

  async function gateOf(value: ButtonValue) {
    const status = await deps.temporal.workflow.getHandle(value.w).query(statusQuery);
    return status.gates.find((g) => g.id === value.g);
  }

  /** The Slack user group on the gate that vouches for this person, when their name alone does not. */
  async function vouchingGroup(value: ButtonValue, by: string, slackUser: string): Promise<string | undefined> {
    const gate = await gateOf(value).catch(() => undefined);
    if (!gate || gate.approvers.includes(by)) return undefined;
    for (const group of gate.approverGroups) {
      const res = await deps.slack.usergroups.users.list({ usergroup: group });
      if (res.users?.includes(slackUser)) return group;
    }
    return undefined;
  }

  /** `answer` is the payload without who answers: the endpoint fills in the person (and group) behind the click. */
  async function answer<M extends AnswerMessage>(value: ButtonValue, update: M, slackUser: string, extra: Omit<AnswerPayload<M>, 'gate' | 'by' | 'group'>): Promise<string> {
    const by = deps.inventory.personForSlackUser(slackUser);
    const group = await vouchingGroup(value, by, slackUser);
    try {
      const unsigned = { gate: value.g, by, ...(group ? { group } : {}), ...extra } as AnswerPayload<M> & { gate: string };
      const payload = deps.bridge ? ((await vouch(deps.bridge, deps.temporal, value.w, update, unsigned, slackUser)) as AnswerPayload<M>) : unsigned;
      const res = await deps.temporal.workflow.getHandle(value.w).executeUpdate(ANSWERS[update].update as UpdateDefinition<VoteResult, [AnswerPayload<M>]>, { args: [payload] });
      log.info({ workflowId: value.w, gate: value.g, update, by, group }, 'gate answered from Slack');
      return update === 'approve' ? `You approved gate \`${res.gate}\`: ${res.state} (${res.approvals}/${res.quorum} approvals).` : `Gate \`${res.gate}\` is now ${res.state}.`;
    } catch (err) {
      log.warn({ workflowId: value.w, gate: value.g, update, by, verdict: verdictOf(err) }, 'gate answer from Slack refused');
      return verdictOf(err);
    }
  }

  async function tell(channel: string | undefined, user: string, text: string): Promise<void> {
    if (!channel) return;
    await deps.slack.chat.postEphemeral({ channel, user, text }).catch((err: Error) => log.warn({ err: err.message }, 'could not tell the clicker'));
  }

  async function handle(payload: SlackPayload): Promise<unknown> {
    const user = payload.user.id;
    if (payload.type === 'block_actions') {
      const action = payload.actions?.[0];
      if (!action) return undefined;
      const value = JSON.parse(action.value) as ButtonValue;
      if (action.action_id === ACTIONS.reject) {
        const gate = await gateOf(value).catch(() => undefined);
        await deps.slack.views.open({ trigger_id: payload.trigger_id as string, view: rejectModal({ ...value, c: payload.channel?.id ?? '' }, gate?.prompt ?? `gate ${value.g}`) as never });
        return undefined;
      }
      const resolve = (Object.keys(ACTIONS) as (keyof typeof ACTIONS)[]).find((k) => ACTIONS[k] === action.action_id);
      if (!resolve || resolve === 'reject') return undefined;
      const verdict = resolve === 'approve' ? await answer(value, 'approve', user, { comment: 'from Slack' }) : await answer(value, 'resolve', user, { action: resolve });
      await tell(payload.channel?.id, user, verdict);
      return undefined;
    }
    if (payload.type === 'view_submission' && payload.view?.callback_id === 'opsflow_reject') {
      const meta = JSON.parse(payload.view.private_metadata) as ButtonValue & { c: string };
      const reason = payload.view.state.values.reason?.reason?.value?.trim() ?? '';
      if (!reason) return { response_action: 'errors', errors: { reason: 'Say why.' } };
      const verdict = await answer(meta, 'reject', user, { reason });
      if (verdict.startsWith('refused') || verdict.startsWith('could not')) return { response_action: 'errors', errors: { reason: verdict } };
      await tell(meta.c, user, verdict);
      return undefined;
    }
    return undefined;
  }

  return (req, res) => {
    const reply = (status: number, body?: unknown) => {
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
      res.end(body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/healthz') return reply(200, 'ok');
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/slack/interactivity') return reply(404, 'not found');
    void (async () => {
      try {
        const body = await readBody(req);
        const signature = req.headers['x-slack-signature'] as string | undefined;
        const problem = signatureProblem(deps.signingSecret, req.headers['x-slack-request-timestamp'] as string | undefined, signature, body, now());
        if (problem) {
          log.warn({ problem }, 'Slack request refused');
          return reply(401, problem);
        }
        if (!replays.fresh(signature as string, now())) {
          log.warn('Slack request refused: replayed');
          return reply(401, 'replayed request');
        }
        const raw = new URLSearchParams(body).get('payload');
        if (!raw) return reply(400, 'no payload');
        reply(200, await handle(JSON.parse(raw) as SlackPayload));
      } catch (err) {
        log.error({ err: (err as Error).message }, 'Slack interactivity failed');
        if (!res.headersSent) reply(500, 'internal error');
      }
    })();
  };
}

export async function serveInteractivity(deps: InteractivityDeps, listen: { port: number; host: string }): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(createInteractivityHandler(deps));
  await new Promise<void>((resolve) => server.listen(listen.port, listen.host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${listen.host}:${port}/slack/interactivity`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
