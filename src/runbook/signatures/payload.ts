// The fields a signed answer adds to the approve / reject / resolve payloads (see docs/gates.md, "Signed gate answers").
import { z } from 'zod';

export const signedAnswerFields = {
  /** An armored SSHSIG over the answer's canonical message (namespace opsflow-gate). */
  signature: z.string().max(8000).optional(),
  /** When it was signed; part of the signed message. */
  time: z.iso.datetime().optional(),
  /** Once per answer; part of the signed message. */
  nonce: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, '8 to 64 letters, digits, - or _').optional(),
  /** The Slack user who clicked, vouched for by the Slack bridge's signature. */
  slackUser: z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'a Slack user id such as U0123ABCD').optional(),
  /** The run the answer was signed for. */
  runId: z.string().min(1).max(100).optional(),
};
