import { z } from 'zod';
import { backupKey } from './backupKey';
import { duration, name, runFields, workflowInput } from './common';

export const STORES = ['files', 'database'] as const;
export type Store = (typeof STORES)[number];

/** What the nightly schedules of a system run: the two syncs, and the pruning of old backups. */
export const SCHEDULE_KINDS = ['files', 'database', 'prune'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/** Every opsflow schedule of a system has an id with this prefix. */
export const scheduleIdPrefix = (system: string) => `opsflow:${system}:`;

/** Schedule ids are fixed, so release workflows pause and resume them by name. */
export function syncScheduleId(system: string, kind: ScheduleKind): string {
  return `${scheduleIdPrefix(system)}${kind}`;
}

const distinct = <T>(a: T[]) => new Set(a).size === a.length;

export const dataSyncInput = workflowInput(() =>
  z.strictObject({
    system: name,
    /** What to copy from production to the standby. */
    stores: z.array(z.enum(STORES)).min(1).refine(distinct, 'a store is named twice').default(['files', 'database']),
    /**
     * The infrastructure receiving the data. The roles registry decides: it must be the standby; naming it makes
     * the intent explicit, and a run naming production is refused.
     */
    to: name.optional(),
    /** The database backup to take and restore; default: today's YYYYMMDD in the system's time zone. */
    key: backupKey.optional(),
    ...runFields,
  }),
);
export type DataSyncInput = z.input<typeof dataSyncInput>;

export const pauseDataSyncInput = workflowInput(() =>
  z.strictObject({
    system: name,
    /** Which of the system's schedules; `prune` only when named (a system without backups has none). */
    schedules: z.array(z.enum(SCHEDULE_KINDS)).min(1).refine(distinct, 'a schedule is named twice').default(['files', 'database']),
    /** Shown as the schedules' note while they are paused. */
    reason: z.string().trim().min(1, 'say why').max(200),
    /** How long the schedules stay paused; they are resumed afterwards whatever happens (cancelling resumes them early). */
    for: duration,
    ...runFields,
  }),
);
export type PauseDataSyncInput = z.input<typeof pauseDataSyncInput>;
