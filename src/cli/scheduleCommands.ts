// `opsflow schedule …`: the command line of src/cli/schedule.ts, which each command loads when it runs.
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { Inventory } from '../config/inventory';

export interface ScheduleCliDeps {
  withClient<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  inventory(file?: string): Promise<Inventory>;
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
    const { listSchedules } = await import('./schedule');
    return (await listSchedules(client, system)).map((r) => r.id);
  };
  const pauseOrResume = (paused: boolean) => async (given: string[], o: { system?: string; reason?: string }) =>
    deps.withClient(async (client) => {
      const targets = await ids(client, given, o.system);
      const { setSchedulesPaused } = await import('../activities/schedules');
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
    .option('--inventory <file>', 'inventory (default: $OPSFLOW_INVENTORY, ./inventory.yaml, sandbox/inventory.yaml)')
    .action(async (o: { system?: string; inventory?: string }) => {
      const [inventory, { applySchedules, desiredSchedules }] = await Promise.all([deps.inventory(o.inventory), import('./schedule')]);
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
        const { listSchedules } = await import('./schedule');
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
          if (err instanceof (await import('@temporalio/client')).ScheduleNotFoundError) throw deps.error(`no schedule "${id}"`);
          throw err;
        }
        console.log(`${id}: triggered; follow with: opsflow list --status Running`);
      }),
    );
}
