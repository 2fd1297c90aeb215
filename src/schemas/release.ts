import { z } from 'zod';
import { approvalGate, fourEyesNeedsRequester, name, runFields, workflowInput } from './common';

const noDotDot = (s: string) => !s.split('/').includes('..');

/** A release's directory name on every node: no path separators, no "..", no shell or option syntax. */
export const releaseId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/, 'letters, digits, ".", "_", "+" or "-", starting with a letter or digit (no "/")')
  .refine((s) => !s.includes('..'), 'must not contain ".."');

export const releaseSource = z
  .strictObject({
    id: releaseId,
    /** Cloned on each node, then the ref checked out (branch, tag or commit). */
    git: z
      .strictObject({
        repo: z.string().min(1).regex(/^[^-\s]/, 'a URL or path, not an option'),
        ref: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/+-]*$/, 'a branch, tag or commit').refine(noDotDot, 'must not contain ".."'),
      })
      .optional(),
    /** A .tar.gz path on the nodes, or an http(s) URL they fetch. */
    tarball: z.string().min(1).regex(/^[^-\s]/, 'a URL or path, not an option').optional(),
  })
  .refine((r) => !!r.git !== !!r.tarball, { message: 'give exactly one of git or tarball' });

export const blueGreenDeployInput = workflowInput(() =>
  z
    .strictObject({
      environment: name,
      service: name,
      release: releaseSource,
      /** The gate between the blue node and the green ones; absent: no gate. */
      promote: approvalGate.optional(),
      /** Green nodes at a time; default from the inventory. */
      batchSize: z.number().int().min(1).optional(),
      /** Tag the released commit and push the tag ({date}: YYYY-MM-DD, {release}: the id). Git releases only. */
      tag: z.strictObject({ pattern: z.string().regex(/^[A-Za-z0-9{}][A-Za-z0-9._{}/-]*$/, 'a git tag name').default('deploy-{date}') }).optional(),
      ...runFields,
    })
    .superRefine((input, ctx) => {
      fourEyesNeedsRequester(input, [input.promote], ctx);
      if (input.tag && !input.release.git) ctx.addIssue({ code: 'custom', path: ['tag'], message: 'tagging needs a git release' });
    }),
);

export const rollbackReleaseInput = workflowInput(() =>
  z
    .strictObject({
      environment: name,
      service: name,
      /** The release to go back to; default: on each node, the newest installed release that is not live. */
      to: releaseId.optional(),
      /** Asked before any node changes. */
      approval: approvalGate.optional(),
      ...runFields,
    })
    .superRefine((input, ctx) => fourEyesNeedsRequester(input, [input.approval], ctx)),
);

export type BlueGreenDeployInput = z.input<typeof blueGreenDeployInput>;
export type RollbackReleaseInput = z.input<typeof rollbackReleaseInput>;
