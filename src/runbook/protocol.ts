// The messages a run understands, defined once for every side: the workflows set handlers for them, the CLI and
// the Slack endpoint send them, and the answer payloads are parsed with these schemas on both sides, so an answer
// typed into the Temporal UI is held to the same rules as one from the CLI or Slack. Only definitions live here
// (no workflow APIs are called), so it loads in the workflow sandbox and in Node alike.
import { z } from 'zod';
import { name, person } from '../schemas/common';
import { MESSAGES, RESOLVE_ACTIONS, type AnswerMessage } from './messages';
import { signedAnswerFields } from './signatures/payload';

export { approveSignal, approveUpdate, rejectSignal, rejectUpdate, resolveSignal, resolveUpdate, signersQuery, statusQuery, type AnswerMessage } from './messages';

const comment = z.string().max(2000);
/** A Slack user group the answering person belongs to, vouched for by the Slack interactivity endpoint. */
const group = z.string().regex(/^S[A-Z0-9]{2,}$/).optional();

export const approveInput = z.strictObject({ gate: name.optional(), by: person, group, comment: comment.optional(), ...signedAnswerFields });
export const rejectInput = z.strictObject({ gate: name.optional(), by: person, group, reason: comment.min(1, 'say why'), ...signedAnswerFields });
export const resolveInput = z.strictObject({
  gate: name.optional(),
  action: z.enum(RESOLVE_ACTIONS),
  by: person,
  group,
  comment: comment.optional(),
  ...signedAnswerFields,
});

export type ApproveInput = z.infer<typeof approveInput>;
export type RejectInput = z.infer<typeof rejectInput>;
export type ResolveInput = z.infer<typeof resolveInput>;

export type GateState = 'open' | 'approved' | 'rejected' | 'timed-out' | 'retry' | 'skip' | 'abort' | 'cancelled';
export type Action = 'approve' | 'reject' | 'retry' | 'skip' | 'abort';

export interface Vote {
  gate: string;
  action: Action;
  by: string;
  at: string;
  comment?: string;
  /** A signed answer: the fingerprint of the key that signed it (the Slack bridge's for a Slack click). */
  key?: string;
  /** The Slack user the Slack bridge vouched for. */
  slackUser?: string;
  /** The signed answer's nonce: the same signature twice is a duplicate vote. */
  nonce?: string;
}

/** Where a Slack message went, to update or reply to it later. */
export interface SlackPlace {
  channel: string;
  ts: string;
}

export interface GateRecord {
  id: string;
  kind: 'approval' | 'failure';
  prompt: string;
  /** What the workflow gathered for the person deciding (a health check, the failing hosts). */
  evidence?: string;
  /** Empty, with no approverGroups either: anyone may answer. */
  approvers: string[];
  /** Slack user groups whose members may answer. */
  approverGroups: string[];
  /** Where the gate's Slack message goes, and where it went. */
  channel?: string;
  slack?: SlackPlace;
  quorum: number;
  fourEyes: boolean;
  /** Failure gates: the answers this step allows (a step whose result is needed cannot be skipped). */
  actions?: ('retry' | 'skip' | 'abort')[];
  /** Answers must be signed (the environment's gates.signed is required). */
  signed?: boolean;
  state: GateState;
  openedAt: string;
  deadline?: string;
  closedAt?: string;
  votes: Vote[];
}

export interface StepRecord {
  id: number;
  name: string;
  host?: string;
  state: 'running' | 'succeeded' | 'failed' | 'skipped' | 'compensated' | 'compensation-failed';
  attempt: number;
  startedAt: string;
  endedAt?: string;
  error?: string;
}

/** What ending early put back: filled when a failure, an abort, a rejection or a cancellation ends the run. */
export interface UndoReport {
  why: 'failed' | 'cancelled';
  /** The undo steps that ran, in the order they ran. */
  putBack: string[];
  /** Undo steps that failed, with the reason: what was not put back. */
  notPutBack: string[];
  /** The run had committed (every node healthy) before it ended: nothing was rolled back, on purpose. */
  committed: boolean;
}

export interface RunStatus {
  workflow: string;
  workflowId: string;
  runId: string;
  environment?: string;
  service?: string;
  release?: string;
  requestedBy?: string;
  dryRun: boolean;
  state: 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';
  phase: string;
  currentStep?: string;
  steps: StepRecord[];
  gates: GateRecord[];
  decisions: Vote[];
  /** Answers sent as signals that the gate turned away, with the reason. */
  refused: { message: string; gate: string; by: string; at: string; reason: string }[];
  error?: string;
  undo?: UndoReport;
}

export interface VoteResult {
  gate: string;
  state: GateState;
  approvals: number;
  quorum: number;
}

/** Each answer: its update, the same message as a signal for clients that can only signal, and its payload. */
export const ANSWERS = {
  approve: { ...MESSAGES.approve, schema: approveInput },
  reject: { ...MESSAGES.reject, schema: rejectInput },
  resolve: { ...MESSAGES.resolve, schema: resolveInput },
} as const;

export type AnswerPayload<M extends AnswerMessage> = z.infer<(typeof ANSWERS)[M]['schema']>;
