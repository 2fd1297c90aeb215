import { z } from 'zod';
import { approvalGate, duration, fourEyesNeedsRequester, name, runFields, workflowInput } from './common';
import { backupKey } from './backupKey';
import { releaseId } from './release';

export const hotStandbyReleaseInput = workflowInput(() =>
  z
    .strictObject({
      system: name,
      release: releaseId,
      /**
       * `complex` (infrastructure or schema changes): embargo, backup, restore on the standby, deploy there, validate,
       * swap DNS. `simple` (stateless): deploy to the standby, check, then to production; no swap.
       */
      kind: z.enum(['complex', 'simple']),
      /** The region the operator believes the standby runs in; refused if the registry says otherwise. */
      standbyRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as ap-east-1').optional(),
      /** Key of the pre-release backup (YYYYMMDDHHMM); default: the run's start time in the system's time zone. */
      backupKey: backupKey.optional(),
      /** Business and tech validation on the standby before the swap. */
      validation: approvalGate.default({ quorum: 1, fourEyes: false, timeout: '24h' }),
      /** How long the new production's checks may take to pass after the swap. */
      sanityTimeout: duration.default('2m'),
      /** Temporal Schedules paused for the release; default: the system's nightly sync schedules. */
      pauseSchedules: z.array(z.string().min(1)).optional(),
      ...runFields,
    })
    .superRefine((input, ctx) => fourEyesNeedsRequester(input, [input.validation], ctx)),
);

export type HotStandbyReleaseInput = z.input<typeof hotStandbyReleaseInput>;
