// `opsflow schedule`: the nightly sync of every system in the inventory as Temporal Schedules — cron in the
// system's time zone, overlap SKIP (a night whose previous run still goes is skipped, not queued), a bounded
// catch-up window (a night missed while the server was down is not replayed hours later) — and pause, unpause,
// trigger and list by schedule id.
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import type { Duration, Workflow } from '@temporalio/common';
import type { Command } from 'commander';
import { SA_SERVICE, TASK_QUEUE } from '../common/constants';
import type { Inventory } from '../config/inventory';
import { setSchedulesPaused } from '../activities/schedules';
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
      await client.schedule.getHandle(id).delete();
      outcomes.push({ id, action: 'deleted' });
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

/** opsflow's schedules (`opsflow:` ids), optionally of one system. */
export async function listSchedules(client: Client, system?: string): Promise<ScheduleRow[]> {
  const rows: ScheduleRow[] = [];
  for await (const s of client.schedule.list()) {
    if (!s.scheduleId.startsWith(system ? scheduleIdPrefix(system) : 'opsflow:')) continue;
    const last = s.info.recentActions[s.info.recentActions.length - 1];
    rows.push({
      id: s.scheduleId,
      paused: s.state.paused,
      note: s.state.note,
      workflowType: s.action?.type === 'startWorkflow' ? s.action.workflowType : undefined,
      nextRuns: s.info.nextActionTimes.slice(0, 2).map((t) => t.toISOString()),
      lastRun: last ? { at: last.takenAt.toISOString(), workflowId: last.action.workflow.workflowId } : undefined,
    });
  }
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}

export interface ScheduleCliDeps {
  withClient<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  inventory(file?: string): Inventory;
  /** An error the CLI reports; exit code 2 for usage mistakes. */
  error(message: string, exitCode?: number): Error;
}

/** `opsflow schedule …` */
export function registerScheduleCommands(program: Command, deps: ScheduleCliDeps): void {
  const schedule = program.command('schedule').description('the nightly sync schedules (Temporal Schedules) of the inventory\'s systems');
  const ids = async (client: Client, given: string[], system?: string) => {
    if (given.length && system) throw deps.error('name schedule ids or --system, not both', 2);
    if (given.length) return given;
    if (!system) throw deps.error('name schedule ids (opsflow schedule list shows them) or --system', 2);
    return (await listSchedules(client, system)).map((r) => r.id);
  };
  const pauseOrResume = (paused: boolean) => async (given: string[], o: { system?: string; reason?: string }) =>
    deps.withClient(async (client) => {
      const targets = await ids(client, given, o.system);
      try {
        const before = await setSchedulesPaused(client, targets, paused, o.reason ?? (paused ? 'paused from the CLI' : 'resumed from the CLI'));
        for (const s of before) console.log(`${s.id}: ${s.wasPaused === paused ? `already ${paused ? 'paused' : 'running'}` : paused ? 'paused' : 'resumed'}`);
      } catch (err) {
        throw deps.error((err as Error).message);
      }
    });

  schedule
    .command('apply')
    .description("create or update the schedules the inventory declares (systems.*.schedules), delete those it no longer does")
    .option('--system <name>', 'only this system')
    .option('--inventory <file>', 'inventory (default: $OPSFLOW_INVENTORY or ./inventory.yaml)')
    .action(async (o: { system?: string; inventory?: string }) => {
      const inventory = deps.inventory(o.inventory);
      try {
        desiredSchedules(inventory, o.system);
      } catch (err) {
        throw deps.error((err as Error).message, 2);
      }
      await deps.withClient(async (client) => {
        const outcomes = await applySchedules(client, inventory, { system: o.system });
        for (const r of outcomes) console.log(`${r.action.padEnd(8)} ${r.id}${r.cron ? `  ${r.cron} (${r.timezone})` : ''}`);
        if (!outcomes.length) console.log('the inventory declares no schedules');
      });
    });

  schedule
    .command('list')
    .description("opsflow's schedules: paused or not, next runs, last run")
    .option('--system <name>', 'only this system')
    .option('--json', 'as JSON')
    .action(async (o: { system?: string; json?: boolean }) =>
      deps.withClient(async (client) => {
        const rows = await listSchedules(client, o.system);
        if (o.json) return console.log(JSON.stringify(rows, null, 2));
        if (!rows.length) return console.log('no opsflow schedules (create them with: opsflow schedule apply)');
        for (const r of rows) {
          console.log(`${r.id.padEnd(32)} ${r.paused ? 'PAUSED ' : 'active '} next ${r.nextRuns[0] ?? '-'}  last ${r.lastRun ? `${r.lastRun.at} ${r.lastRun.workflowId}` : '-'}`);
          if (r.paused && r.note) console.log(`${' '.repeat(33)}${r.note}`);
        }
      }),
    );

  schedule
    .command('pause [ids...]')
    .description('pause schedules by id, or all of a system')
    .option('--system <name>', "all of this system's schedules")
    .requiredOption('-r, --reason <text>', 'why (shown as the schedule\'s note)')
    .action(pauseOrResume(true));

  schedule
    .command('unpause [ids...]')
    .description('resume paused schedules')
    .option('--system <name>', "all of this system's schedules")
    .option('-r, --reason <text>', 'note')
    .action(pauseOrResume(false));

  schedule
    .command('trigger <id>')
    .description('run a schedule now (skipped, as at night, when its previous run still goes)')
    .action(async (id: string) =>
      deps.withClient(async (client) => {
        try {
          const handle = client.schedule.getHandle(id);
          // The client's default would be ALLOW_ALL: a manual run obeys the schedule's own overlap policy.
          await handle.trigger((await handle.describe()).policies.overlap);
        } catch (err) {
          if (err instanceof ScheduleNotFoundError) throw deps.error(`no schedule "${id}"`);
          throw err;
        }
        console.log(`${id}: triggered; follow with: opsflow list --status Running`);
      }),
    );
}
