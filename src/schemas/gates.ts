// Payloads of the gate messages. The update validators, the signal handlers and the CLI all parse with these,
// so an answer typed into the Temporal UI is held to the same rules as one from the CLI or Slack.
import { z } from 'zod';
import { name, person } from './common';

const comment = z.string().max(2000);
/** A Slack user group the answering person belongs to, vouched for by the Slack interactivity endpoint. */
const group = z.string().regex(/^S[A-Z0-9]{2,}$/).optional();

export const approveInput = z.strictObject({ gate: name.optional(), by: person, group, comment: comment.optional() });
export const rejectInput = z.strictObject({ gate: name.optional(), by: person, group, reason: comment.min(1, 'say why') });
export const resolveInput = z.strictObject({
  gate: name.optional(),
  action: z.enum(['retry', 'skip', 'abort']),
  by: person,
  group,
  comment: comment.optional(),
});

export type ApproveInput = z.infer<typeof approveInput>;
export type RejectInput = z.infer<typeof rejectInput>;
export type ResolveInput = z.infer<typeof resolveInput>;
