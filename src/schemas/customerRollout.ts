import { z } from 'zod';
import { approvalGate, fourEyesNeedsRequester, name, runFields, workflowInput } from './common';
import { releaseSource } from './release';

export const customerRolloutInput = workflowInput(() =>
  z
    .strictObject({
      /** The release every customer gets: one blueGreenDeploy per customer and stage. */
      release: releaseSource,
      /** Customers, each a service of the inventory in both the staging and the production environment. */
      customers: z
        .array(name)
        .min(1)
        .refine((c) => new Set(c).size === c.length, 'a customer appears twice'),
      /** The inventory environments of the two stages. */
      stages: z.strictObject({ staging: name.default('staging'), production: name.default('production') }).default({ staging: 'staging', production: 'production' }),
      /** Customers deployed at the same time, in each stage. */
      concurrency: z.number().int().min(1).max(50).default(2),
      /** Stop at the first failed customer (no further customer starts); otherwise the others go on. */
      stopOnFailure: z.boolean().default(false),
      /** The gate between staging and production, with every customer's staging outcome; there is always one. */
      promote: approvalGate.default({ quorum: 1, fourEyes: false, timeout: '24h' }),
      ...runFields,
    })
    .superRefine((input, ctx) => {
      fourEyesNeedsRequester(input, [input.promote], ctx);
      if (input.stages.staging === input.stages.production) ctx.addIssue({ code: 'custom', path: ['stages'], message: 'staging and production must be different environments' });
    }),
);

export type CustomerRolloutInput = z.input<typeof customerRolloutInput>;
