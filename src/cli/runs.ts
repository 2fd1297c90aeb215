// Following runs and answering their gates: what `status`, `watch`, `list` and `approve|reject|resolve` do once
// the command line is parsed. Loaded only by those commands (src/cli/main.ts imports it on demand).
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { SA_ENVIRONMENT } from '../common/constants';
import { REFUSALS, statusQuery, type AnswerMessage } from '../runbook/messages';
import type { RunStatus, VoteResult } from '../runbook/protocol';
import { CliError } from './cliError';
import { withClient } from './client';
import { renderStatus } from './render';
import { withSignature, type AnswerPayload } from './sign';

function failureMessage(err: unknown): string {
  let e = err as Error | undefined;
  const parts: string[] = [];
  while (e) {
    if (e.message && !parts.includes(e.message)) parts.push(e.message);
    e = (e as { cause?: Error }).cause;
  }
  const message = parts.slice(-1)[0] ?? String(err);
  // The run's payloads were encrypted by a worker with keys this CLI was not given.
  return message.includes('binary/encrypted') ? `${message} (the payloads are encrypted: set OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE as the worker has them)` : message;
}

async function fetchStatus(handle: WorkflowHandle): Promise<RunStatus | string> {
  try {
    return await handle.query(statusQuery);
  } catch (queryErr) {
    const d = await handle.describe();
    if (d.status.name === 'FAILED') {
      const reason = await handle.result().then(() => '', (err: unknown) => failureMessage(err));
      return `${d.type} ${d.workflowId}: FAILED\n  ${reason}`;
    }
    return `${d.type} ${d.workflowId}: ${d.status.name} (status unavailable: ${failureMessage(queryErr)})`;
  }
}

async function progressLine(handle: WorkflowHandle): Promise<string | undefined> {
  const d = await handle.describe();
  for (const a of d.raw.pendingActivities ?? []) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    // Through the client's data converter: heartbeats are encrypted when payload encryption is on.
    const p = await decodeFromPayloadsAtIndex<{ total?: number; done?: number; failed?: number; running?: string[]; deployment?: string; message?: string }>(handle.client.options.loadedDataConverter, 0, [payload]);
    // A Kubernetes rollout (k8sRolloutStatus) heartbeats its deployment and progress.
    if (p?.deployment && p.message) return `rollout ${p.deployment}: ${p.message}`;
    if (p && typeof p.total === 'number') return `${a.activityType?.name}: ${p.done}/${p.total} hosts done, ${p.failed} failed${p.running?.length ? `, running on ${p.running.slice(0, 5).join(', ')}${p.running.length > 5 ? '…' : ''}` : ''}`;
  }
  return undefined;
}

export async function waitForResult(handle: WorkflowHandle): Promise<unknown> {
  try {
    return await handle.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError) throw new CliError(`${handle.workflowId} failed: ${failureMessage(err)}`);
    throw err;
  }
}

export async function showStatus(id: string, o: { json?: boolean }): Promise<void> {
  await withClient(async (client) => {
    const status = await fetchStatus(client.workflow.getHandle(id));
    console.log(typeof status === 'string' || !o.json ? (typeof status === 'string' ? status : renderStatus(status)) : JSON.stringify(status, null, 2));
  });
}

export async function watch(id: string, o: { interval: number }): Promise<void> {
  await withClient(async (client) => {
    const handle = client.workflow.getHandle(id);
    const printed = new Set<number>();
    let lastProgress = '';
    for (;;) {
      const status = await fetchStatus(handle);
      if (typeof status === 'string') {
        console.log(status);
        return;
      }
      // A step is printed once it has ended; a running one shows up in the progress line meanwhile.
      for (const st of status.steps.filter((x) => x.state !== 'running' && !printed.has(x.id))) {
        printed.add(st.id);
        console.log(`${st.startedAt.slice(11, 19)} ${st.name}${st.host ? ` @${st.host}` : ''}: ${st.state}${st.error ? ` — ${st.error.split('\n')[0]}` : ''}`);
      }
      const progress = await progressLine(handle);
      if (progress && progress !== lastProgress) console.log(`  … ${progress}`);
      lastProgress = progress ?? '';
      if (status.state !== 'running') {
        console.log(`\n${renderStatus(status)}`);
        if (status.state === 'failed') throw new CliError('the run failed');
        if (status.state === 'cancelled') throw new CliError('the run was cancelled');
        return;
      }
      await new Promise((r) => setTimeout(r, o.interval));
    }
  });
}

export interface ListFilter {
  env?: string;
  service?: string;
  release?: string;
  status?: string;
  limit: number;
}

export async function listRuns(o: ListFilter): Promise<void> {
  const labels = { env: o.env, service: o.service, release: o.release };
  if (Object.values(labels).some(Boolean)) {
    // Checked here rather than by the option parser, so a plain `opsflow list` does not load zod.
    const { name } = await import('../schemas/common');
    for (const [option, value] of Object.entries(labels)) {
      const r = value === undefined ? undefined : name.safeParse(value);
      if (r && !r.success) throw new CliError(`option '--${option}' argument '${value}' is invalid. ${r.error.issues[0].message}`, 2);
    }
  }
  await withClient(async (client) => {
    const clauses = [
      o.env && `OpsEnvironment = "${o.env}"`,
      o.service && `OpsService = "${o.service}"`,
      o.release && `OpsRelease = "${o.release}"`,
      o.status && `ExecutionStatus = "${o.status}"`,
    ].filter(Boolean);
    let n = 0;
    for await (const wf of client.workflow.list({ query: clauses.join(' AND ') || undefined })) {
      const env = wf.typedSearchAttributes.get(SA_ENVIRONMENT);
      console.log(`${wf.startTime.toISOString().slice(0, 19)}  ${wf.status.name.padEnd(10)} ${wf.type.padEnd(18)} ${(env ?? '').padEnd(12)} ${wf.workflowId}`);
      if (++n >= o.limit) break;
    }
    if (!n) console.log('no runs match');
  });
}

/** Sends a gate answer with the definitions the workflows handle (src/runbook/messages.ts). */
export async function answer<P extends AnswerPayload>(id: string, message: { update: UpdateDefinition<VoteResult, [P]>; signal: SignalDefinition<[P]> }, unsigned: P, asSignal: boolean, key?: string): Promise<void> {
  const name = message.update.name;
  await withClient(async (client) => {
    const handle = client.workflow.getHandle(id);
    // Signed with the SSH agent (or --key) when the run's keys in force list one for --by.
    const signed = () => withSignature(handle, client.options.namespace, name as AnswerMessage, unsigned, { key });
    if (asSignal) {
      // A signal's refusal comes back to no one: whether to sign is asked first.
      await handle.signal(message.signal, await signed());
      console.log(`signal ${name} sent to ${id}; check \`opsflow status ${id}\` for refusals`);
      return;
    }
    const send = async (payload: P, ifSignatureNeeded?: () => Promise<VoteResult>): Promise<VoteResult> => {
      try {
        return await handle.executeUpdate(message.update, { args: [payload] });
      } catch (err) {
        if (!(err instanceof WorkflowUpdateFailedError)) throw new CliError(`${name} failed: ${failureMessage(err)}`);
        if (ifSignatureNeeded && (err.cause as { type?: string } | undefined)?.type === REFUSALS.signatureNeeded) return ifSignatureNeeded();
        throw new CliError(`refused: ${failureMessage(err)}`);
      }
    };
    const sendSigned = async () => send(await signed());
    // Without --key the answer goes unsigned first: a run that takes it signed only refuses it (unrecorded), and
    // only then is it signed; an answer that needs no signature takes one round trip fewer.
    const res = key ? await sendSigned() : await send(unsigned, sendSigned);
    console.log(`${name}: gate "${res.gate}" is ${res.state}${name === 'approve' ? ` (${res.approvals}/${res.quorum} approvals)` : ''}`);
  });
}
