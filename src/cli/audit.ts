// `opsflow audit`: every gate answer of a run, re-verified from the run's history alone (the keys in force are
// the gateSigners activity's result there), offline and with the workflow's own checks. A history whose answers
// were edited after the fact no longer verifies.
import type { LoadedDataConverter } from '@temporalio/common';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import type { temporal } from '@temporalio/proto';
import { ANSWERS, type AnswerMessage } from '../runbook/protocol';
import { CLOCK_SKEW_MS, MAX_AGE_MS, SignatureRefused, verifyAnswer, type AnswerToVerify, type RunSigners } from '../runbook/signatures/check';
import { decisionOf } from '../runbook/signatures/message';
import { parsePublicKey } from '../runbook/signatures/sshsig';

export interface AuditedAnswer {
  at: string;
  via: 'update' | 'signal';
  decision: string;
  gate?: string;
  by: string;
  comment?: string;
  /** The signing key's fingerprint, for signed answers. */
  key?: string;
  slackUser?: string;
  verdict: 'verified' | 'unsigned' | 'FAILS';
  problem?: string;
}

export interface AuditReport {
  signers?: RunSigners;
  answers: AuditedAnswer[];
  problems: number;
}

type Event = temporal.api.history.v1.IHistoryEvent;

/** An event's time in ms; its seconds are a Long from the server and a plain number from an exported JSON file. */
const eventMs = (e: Event) => Number(String(e.eventTime?.seconds ?? 0)) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);

function isAnswer(name: string | null | undefined): name is AnswerMessage {
  return !!name && Object.hasOwn(ANSWERS, name);
}

export async function auditHistory(history: temporal.api.history.v1.IHistory, converter: LoadedDataConverter): Promise<AuditReport> {
  const events: Event[] = history.events ?? [];
  const decode = async (payloads: temporal.api.common.v1.IPayloads | null | undefined) => (await decodeArrayFromPayloads(converter, payloads?.payloads ?? []))[0];
  const report: AuditReport = { answers: [], problems: 0 };
  const received: { at: number; via: AuditedAnswer['via']; message: AnswerMessage; payload: unknown }[] = [];
  let signersEvent: string | undefined;
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === 'gateSigners' && !signersEvent) signersEvent = String(e.eventId);
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed && signersEvent && String(completed.scheduledEventId) === signersEvent) report.signers = (await decode(completed.result)) as RunSigners;
    const accepted = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
    if (isAnswer(accepted?.name)) received.push({ at: eventMs(e), via: 'update', message: accepted.name, payload: await decode(accepted.args) });
    const signaled = e.workflowExecutionSignaledEventAttributes;
    if (isAnswer(signaled?.signalName)) received.push({ at: eventMs(e), via: 'signal', message: signaled.signalName, payload: await decode(signaled.input) });
  }
  const gates = [...new Set(received.map((r) => (r.payload as { gate?: string }).gate).filter((g): g is string => !!g))];
  const counted = new Set<string>();
  for (const r of received) {
    const p = r.payload as AnswerToVerify & { reason?: string; action?: 'retry' | 'skip' | 'abort' };
    const comment = p.reason ?? p.comment;
    const entry: AuditedAnswer = { at: new Date(r.at).toISOString(), via: r.via, decision: decisionOf(r.message, p.action), gate: p.gate, by: p.by, comment, verdict: 'unsigned' };
    try {
      if (p.signature) {
        if (!report.signers) throw new SignatureRefused('signed, but the history holds no keys in force (no gateSigners result)');
        const signer = verifyAnswer({ ...p, decision: entry.decision as AnswerToVerify['decision'], comment }, report.signers.run, report.signers, gates);
        Object.assign(entry, { verdict: 'verified', key: signer.key, slackUser: signer.slackUser });
        const signedAt = Date.parse(p.time as string);
        if (r.at - signedAt > MAX_AGE_MS || signedAt - r.at > CLOCK_SKEW_MS) throw new SignatureRefused(`signed at ${p.time}, but received at ${entry.at}: outside the ${MAX_AGE_MS / 60_000}-minute window`);
        if (counted.has(signer.nonce)) throw new SignatureRefused(`duplicate vote: nonce ${signer.nonce} was counted before`);
        if (r.via === 'update') counted.add(signer.nonce);
      } else if (report.signers?.signed === 'required') {
        throw new SignatureRefused('unsigned, though the run took signed answers only');
      }
    } catch (err) {
      if (!(err instanceof SignatureRefused)) throw err;
      entry.verdict = 'FAILS';
      // The run applies the same checks to a signal, so one that fails them was refused (status.refused).
      entry.problem = r.via === 'signal' ? `${err.message} (a signal: the run refused it too)` : err.message;
      report.problems++;
    }
    report.answers.push(entry);
  }
  return report;
}

export function renderAudit(r: AuditReport): string {
  const run = r.signers?.run;
  const out = [run ? `run ${run.workflowId} (run id ${run.runId}, namespace ${run.namespace})` : 'run from before signed gates: no keys in its history'];
  if (r.signers) {
    out.push(`keys in force (from the history): answers ${r.signers.signed === 'required' ? 'must be signed' : 'may be signed'}`);
    for (const [who, p] of Object.entries(r.signers.people)) if (p.keys.length) out.push(`  ${who}: ${p.keys.map((k) => parsePublicKey(k).fingerprint).join(', ')}`);
    if (r.signers.slackBridge.length) out.push(`  Slack bridge: ${r.signers.slackBridge.map((k) => parsePublicKey(k).fingerprint).join(', ')}`);
  }
  out.push('', r.answers.length ? 'answers:' : 'no gate answers in this history');
  for (const a of r.answers) {
    const who = `${a.by}${a.slackUser ? ` (Slack ${a.slackUser}, through the Slack bridge)` : ''}`;
    const what = `${a.at} ${a.via} ${a.decision} gate ${a.gate ?? '(the open one)'} by ${who}${a.comment ? `: ${a.comment}` : ''}`;
    const verdict = a.verdict === 'verified' ? `VERIFIED, key ${a.key}` : a.verdict === 'unsigned' ? 'unsigned' : `DOES NOT VERIFY: ${a.problem}`;
    out.push(`  ${what}`, `      ${verdict}`);
  }
  out.push('', r.problems ? `${r.problems} answer(s) do not verify` : 'every signed answer verifies');
  return out.join('\n');
}
