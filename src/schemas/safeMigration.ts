import { z } from 'zod';
import { checkQuerySchema } from '../config/systems';
import { approvalGate, argv, duration, fourEyesNeedsRequester, name, runFields, workflowInput } from './common';

export const safeMigrationInput = workflowInput(() =>
  z
    .strictObject({
      /** An application of the inventory: its database, read-only switch, restart and check. */
      application: name,
      migration: z.strictObject({
        /** Names this migration: the copy is `<database>_mig_<id>`, the original data is kept as `<database>_pre_<id>`. */
        id: z.string().regex(/^[a-z0-9][a-z0-9_]{0,23}$/, 'lower-case letters, digits and "_", at most 24'),
        /**
         * Run in order against the restored copy, each an argv (every element one argument, never parsed by a shell),
         * with PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD pointing at the copy.
         */
        commands: z.array(argv).min(1),
        /** Per command. */
        timeout: duration.default('1h'),
      }),
      /** Queries the migrated copy must pass, besides the database's own checks in the inventory. */
      checks: z.array(checkQuerySchema).default([]),
      /** The directory on the worker where the full and the final dump are written. */
      backupDir: z.string().regex(/^\/[^\u0000]*$/, 'an absolute path on the worker'),
      /** A gate before anything happens, showing the plan. */
      approval: approvalGate.optional(),
      ...runFields,
    })
    .superRefine((input, ctx) => fourEyesNeedsRequester(input, [input.approval], ctx)),
);

export type SafeMigrationInput = z.input<typeof safeMigrationInput>;
