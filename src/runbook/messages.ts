// The names and types of the messages a run understands, without their payload schemas: src/runbook/protocol.ts
// re-exports them with the schemas. They live apart so that a client which only sends them (`opsflow status`,
// `approve`) starts without loading zod.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApproveInput, RejectInput, ResolveInput, RunStatus, VoteResult } from './protocol';
import type { RunSigners } from './signatures/check';

/** What a failure gate can be answered with. */
export const RESOLVE_ACTIONS = ['retry', 'skip', 'abort'] as const;

export const approveUpdate = defineUpdate<VoteResult, [ApproveInput]>('approve');
export const rejectUpdate = defineUpdate<VoteResult, [RejectInput]>('reject');
export const resolveUpdate = defineUpdate<VoteResult, [ResolveInput]>('resolve');
export const approveSignal = defineSignal<[ApproveInput]>('approve');
export const rejectSignal = defineSignal<[RejectInput]>('reject');
export const resolveSignal = defineSignal<[ResolveInput]>('resolve');
export const statusQuery = defineQuery<RunStatus>('status');
/** The keys in force for the run's gates (null for runs from before signed gates): the CLI signs with one. */
export const signersQuery = defineQuery<RunSigners | null>('signers');

/** Each answer: its update, and the same message as a signal for clients that can only signal. */
export const MESSAGES = {
  approve: { update: approveUpdate, signal: approveSignal },
  reject: { update: rejectUpdate, signal: rejectSignal },
  resolve: { update: resolveUpdate, signal: resolveSignal },
} as const;

export type AnswerMessage = keyof typeof MESSAGES;

/**
 * The failure type of an update answer turned away. SignatureNeeded: the same answer would be taken signed (the
 * gate takes signed answers only, or the person answering has keys in force), so a client that can sign does.
 */
export const REFUSALS = { refused: 'Refused', signatureNeeded: 'SignatureNeeded' } as const;
