// Building blocks shared by every workflow's input schema. This module is bundled into workflow code, so it
// stays pure: zod only, no Node APIs.
import { z } from 'zod';

/**
 * A workflow's input schema, built the first time it is used. Every run the worker creates evaluates the workflow
 * bundle afresh (the SDK's reusable context gives each run its own modules), so building every workflow's schema
 * up front was a quarter of each run's creation time (docs/performance.md); this way a run builds only its own.
 */
export const workflowInput = <T extends z.ZodType>(build: () => T) => z.lazy(build);

/** Durations in the compact form Temporal timers accept: `90s`, `10m`, `2h`, `1d`, `500ms`. */
export const duration = z
  .string()
  .regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, 'a duration such as 30s, 10m, 2h or 1d');

/** Names of environments, groups, hosts, gates: safe in file names, shell words and search attributes. */
export const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, ".", "_" or "-" (starting with a letter or digit), at most 63');

export const person = z
  .string()
  .trim()
  .min(1, 'must name a person')
  .max(128)
  .regex(/^[^\u0000-\u001f]+$/, 'no control characters');

/** An argument vector: each element reaches the remote program as exactly one argument, never through a shell. */
export const argv = z
  .array(z.string().max(64 * 1024).regex(/^[^\u0000]*$/, 'no NUL bytes'))
  .min(1, 'needs at least the program name')
  .refine((a) => a.length === 0 || a[0].length > 0, 'the program name is empty');

export const envVars = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'),
  z.string().regex(/^[^\u0000]*$/, 'no NUL bytes'),
);

export const target = z
  .strictObject({
    group: name.optional(),
    hosts: z.array(name).min(1).optional(),
    role: name.optional(),
  })
  .refine((t) => [t.group, t.hosts, t.role].filter((x) => x !== undefined).length === 1, {
    message: 'name exactly one of group, hosts or role',
  });
export type Target = z.infer<typeof target>;

export const approvalGate = z
  .strictObject({
  /** Who may approve; absent or empty means anyone who can reach the workflow. */
  approvers: z.array(person).optional(),
  /** Approvals needed (M of N). */
  quorum: z.number().int().min(1).max(20).default(1),
  /** Refuse approval from the person who started the run. */
  fourEyes: z.boolean().default(false),
  /** When the gate gives up; it then rejects. There is no auto-approve. */
  timeout: duration.default('24h'),
  remindEvery: duration.optional(),
  escalateAfter: duration.optional(),
  /** Added to the approvers, and told, once `escalateAfter` has passed. */
  escalateTo: z.array(person).optional(),
  /** Slack user group ids whose members may approve (membership is checked by the Slack endpoint). */
  approverGroups: z.array(z.string().regex(/^S[A-Z0-9]{2,}$/, 'a Slack user group id such as S0123ABCD')).optional(),
  /** Slack channel for this gate's message; default: the run's notify channel. */
  channel: z.string().min(1).optional(),
  })
  .refine((g) => !g.approvers?.length || g.quorum <= g.approvers.length + (g.escalateTo?.length ?? 0), {
    message: 'quorum is larger than the number of approvers',
    path: ['quorum'],
  });
export type ApprovalGateSpec = z.infer<typeof approvalGate>;

export const failurePolicy = z.strictObject({
  /** `gate`: wait for an operator to retry, skip or abort; `fail`: end the run at once. */
  onFailure: z.enum(['gate', 'fail']).default('gate'),
  /** Who may answer failure gates; absent means anyone. */
  resolvers: z.array(person).optional(),
  /** How long a failure gate waits before aborting; absent waits indefinitely. */
  timeout: duration.optional(),
});
export type FailurePolicy = z.infer<typeof failurePolicy>;

/** Where a run is announced and its gates posted: a Slack channel, or the inventory's for the environment. */
export const notify = z.strictObject({ channel: z.string().min(1).optional() });

/** Fields every workflow input carries. */
export const runFields = {
  /** Announce the run and post its gates to Slack (when the worker has Slack configured). */
  notify: notify.optional(),
  /** Resolve and plan only: nothing changes in the world, and the result lists every command. */
  dryRun: z.boolean().default(false),
  /** Who started the run; four-eyes gates refuse this person's approval. */
  requestedBy: person.optional(),
  failure: failurePolicy.default({ onFailure: 'gate' }),
};

/** A four-eyes gate needs to know whom to refuse. */
export function fourEyesNeedsRequester(input: { requestedBy?: string }, gates: (ApprovalGateSpec | undefined)[], ctx: z.RefinementCtx): void {
  if (!input.requestedBy && gates.some((g) => g?.fourEyes)) {
    ctx.addIssue({ code: 'custom', path: ['requestedBy'], message: 'required when a gate asks for four eyes' });
  }
}
