import { z } from 'zod';
import { backupKey, backupKeyKind } from './backupKey';
import { name, runFields, workflowInput } from './common';

export const backupDatabaseInput = workflowInput(() =>
  z
    .strictObject({
      system: name,
      /** The infrastructure whose database is dumped; default: production, per the roles registry. */
      from: name.optional(),
      /** Default: now, as YYYYMMDD (scheduled) or, with `manual`, YYYYMMDDHHMM. A key already backed up is reused. */
      key: backupKey.optional(),
      manual: z.boolean().default(false),
      ...runFields,
    })
    .superRefine((input, ctx) => {
      if (input.key && input.manual && backupKeyKind(input.key) !== 'manual') {
        ctx.addIssue({ code: 'custom', path: ['key'], message: 'a manual backup is keyed YYYYMMDDHHMM' });
      }
    }),
);
export type BackupDatabaseInput = z.input<typeof backupDatabaseInput>;

export const restoreDatabaseInput = workflowInput(() =>
  z.strictObject({
    system: name,
    key: backupKey,
    /** The infrastructure whose database is replaced: the standby. Default: the standby, per the roles registry. */
    to: name.optional(),
    /**
     * Set by dataSync, which starts the restore beside its backup: make the new database at once, then wait for
     * the parent's `backupDone` signal before downloading. Only for a run started by another run.
     */
    afterBackup: z.boolean().default(false),
    ...runFields,
  }),
);
export type RestoreDatabaseInput = z.input<typeof restoreDatabaseInput>;

export const pruneBackupsInput = workflowInput(() =>
  z.strictObject({
    system: name,
    ...runFields,
  }),
);
export type PruneBackupsInput = z.input<typeof pruneBackupsInput>;
