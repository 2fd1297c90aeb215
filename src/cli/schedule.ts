// `opsflow schedule`: the nightly sync of every system in the inventory as Temporal Schedules — cron in the
// system's time zone, overlap SKIP (a night whose previous run still goes is skipped, not queued), a bounded
// catch-up window (a night missed while the server was down is not replayed hours later) — and pause, unpause,
// trigger and list by schedule id.
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import type { Duration, Workflow } from '@temporalio/common';
import { SA_SERVICE, TASK_QUEUE } from '../common/constants';
import type { Inventory } from '../config/inventory';
import { SCHEDULE_KINDS, scheduleIdPrefix, syncScheduleId, type ScheduleKind } from '../schemas/dataSync';

export interface DesiredSchedule {
  id: string;
  system: string;
  kind: ScheduleKind;
  cron: string;
  timezone: string;
  catchupWindow: string;
  workflowType: 'dataSync' | 'pruneBackups';
  input: Record<string, unknown>;
}

export interface ApplyOutcome {
  id: string;
  action: 'created' | 'updated' | 'deleted';
  cron?: string;
  timezone?: string;
}

/** The schedules the inventory declares; a declaration its system cannot run is an error, named. */
export function desiredSchedules(inventory: Inventory, only?: string): DesiredSchedule[] {
  const systems = only ? [only] : inventory.systems();
  const out: DesiredSchedule[] = [];
  for (const system of systems) {
    const sys = inventory.system(system);
    const infras = Object.entries(sys.infrastructures);
    const crons: Record<ScheduleKind, string | undefined> = {
      files: sys.schedules.files,
      database: sys.schedules.database,
      prune: sys.schedules.prune ?? (sys.backups ? sys.schedules.database : undefined),
    };
    const lacking = (what: 'files' | 'database') => infras.filter(([, i]) => !i[what]).map(([n]) => n);
    for (const kind of SCHEDULE_KINDS) {
      const cron = crons[kind];
      if (!cron) continue;
      if (kind === 'files' && lacking('files').length) throw new Error(`systems.${system}.schedules.files: ${lacking('files').join(', ')} has no files path`);
      if (kind === 'database' && lacking('database').length) throw new Error(`systems.${system}.schedules.database: ${lacking('database').join(', ')} has no database`);
      if (kind !== 'files' && !sys.backups) throw new Error(`systems.${system}.schedules.${kind}: the system has no backups section`);
      // A scheduled run that fails ends at once (no failure gate waiting for someone), so the next night runs.
      const common = { system, requestedBy: `schedule ${syncScheduleId(system, kind)}`, failure: { onFailure: 'fail' } };
      out.push({
        id: syncScheduleId(system, kind),
        system,
        kind,
        cron,
        timezone: sys.timezone,
        catchupWindow: sys.schedules.catchupWindow,
        workflowType: kind === 'prune' ? 'pruneBackups' : 'dataSync',
        input: kind === 'prune' ? common : { ...common, stores: [kind] },
      });
    }
  }
  return out;
}

function scheduleParts(d: DesiredSchedule, taskQueue: string) {
  const action: ScheduleOptionsStartWorkflowAction<Workflow> = {
    type: 'startWorkflow',
    workflowType: d.workflowType,
    args: [d.input],
    taskQueue,
    // The schedule appends the scheduled time to this id.
    workflowId: d.id,
    staticSummary: `${d.kind === 'prune' ? 'prune backups of' : `nightly ${d.kind} sync of`} ${d.system}`,
    typedSearchAttributes: [{ key: SA_SERVICE, value: d.system }],
  };
  return {
    spec: { cronExpressions: [d.cron], timezone: d.timezone },
    action,
    // The inventory's schema checked the duration's format.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: d.catchupWindow as Duration, pauseOnFailure: false },
  };
}

async function existing(client: Client, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(prefix)) ids.push(s.scheduleId);
  return ids;
}

/**
 * Makes Temporal's schedules match the inventory: creates or updates every declared one (keeping its paused
 * state), and deletes opsflow schedules of the systems in scope that the inventory no longer declares.
 */
export async function applySchedules(client: Client, inventory: Inventory, opts: { system?: string; taskQueue?: string } = {}): Promise<ApplyOutcome[]> {
  const desired = desiredSchedules(inventory, opts.system);
  const taskQueue = opts.taskQueue ?? process.env.OPSFLOW_TASK_QUEUE ?? TASK_QUEUE;
  const outcomes: ApplyOutcome[] = [];
  for (const d of desired) {
    const parts = scheduleParts(d, taskQueue);
    const base = { id: d.id, cron: d.cron, timezone: d.timezone };
    try {
      await client.schedule.create({ scheduleId: d.id, ...parts, state: { note: 'created by opsflow schedule apply' } });
      outcomes.push({ ...base, action: 'created' });
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await client.schedule.getHandle(d.id).update((prev) => ({ ...prev, ...parts }));
      outcomes.push({ ...base, action: 'updated' });
    }
  }
  const wanted = new Set(desired.map((d) => d.id));
  for (const system of opts.system ? [opts.system] : inventory.systems()) {
    for (const id of await existing(client, scheduleIdPrefix(system))) {
      if (wanted.has(id) || !(SCHEDULE_KINDS as readonly string[]).includes(id.split(':').pop() ?? '')) continue;
      try {
        await client.schedule.getHandle(id).delete();
        outcomes.push({ id, action: 'deleted' });
      } catch (err) {
        // Deleted by an earlier apply that the visibility store has not caught up with.
        if (!(err instanceof ScheduleNotFoundError)) throw err;
      }
    }
  }
  return outcomes;
}

export interface ScheduleRow {
  id: string;
  paused: boolean;
  note?: string;
  workflowType?: string;
  nextRuns: string[];
  lastRun?: { at: string; workflowId: string };
}

/**
 * opsflow's schedules (`opsflow:` ids), optionally of one system. The list comes from the server's visibility
 * store, which lags behind a pause or unpause (seconds, on a cluster under load); each row's state is read from
 * the schedule itself, so `list` right after `pause` shows it paused.
 */
export async function listSchedules(client: Client, system?: string): Promise<ScheduleRow[]> {
  const found = await existing(client, system ? scheduleIdPrefix(system) : 'opsflow:');
  const described = await Promise.all(found.map((id) => client.schedule.getHandle(id).describe().catch((err: unknown) => {
    // Deleted since the visibility store listed it.
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  })));
  const rows: ScheduleRow[] = [];
  for (const s of described) {
    if (!s) continue;
    const last = s.info.recentActions[s.info.recentActions.length - 1];
    rows.push({
      id: s.scheduleId,
      paused: s.state.paused,
      note: s.state.note,
      workflowType: s.action.type === 'startWorkflow' ? s.action.workflowType : undefined,
      nextRuns: s.info.nextActionTimes.slice(0, 2).map((t) => t.toISOString()),
      lastRun: last ? { at: last.takenAt.toISOString(), workflowId: last.action.workflow.workflowId } : undefined,
    });
  }
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}
