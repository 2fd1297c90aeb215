import { ActivityCancellationType, ApplicationFailure, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { HostRunResult } from '../activities/fleet';
import type { CommandOutcome, DumpResult, HostStep, MigrationPlan } from '../activities/migration';
import type { CheckOutcome } from '../activities/postgres';
import { SA_ENVIRONMENT, SA_RELEASE, SA_SERVICE } from '../common/constants';
import { quoteArgv } from '../common/shell';
import { safeMigrationInput, type SafeMigrationInput } from '../schemas/safeMigration';
import { parseInput } from '../schemas/validate';
import { Runbook } from '../runbook';
import { activitiesFor, HEARTBEAT_TIMEOUT, retry } from './activityOptions';

/** Plans, checks and the switch: short, heartbeating, so a dead worker is noticed quickly. */
const db = proxyActivities<Activities>({
  startToCloseTimeout: '1h',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry({ initialInterval: '2s', maximumInterval: '30s' }),
});

/** The application's commands, guarded on the host: a retry after a crash collects the first run instead of running it again. */
const HOST_COMMAND_MS = 10 * 60_000;
const host = activitiesFor(HOST_COMMAND_MS, { maximumAttempts: 10 }, { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });

export interface SafeMigrationResult {
  ok: boolean;
  dryRun: boolean;
  application: string;
  /** The database's name on its server: the application's, before and after. */
  database: string;
  /** The restored copy the migration ran on. After a switch it is `database`; otherwise it is kept under this name. */
  copy: string;
  /** The original data's name after the switch. */
  previous: string;
  switched: boolean;
  backups: { full?: DumpResult; final?: DumpResult };
  /** How long the application refused writes, by the run's (Temporal's) clock. */
  readOnly: { ms: number; periods: { from: string; to?: string }[]; refusal?: string };
  migration: CommandOutcome[];
  checks: CheckOutcome[];
  plan?: string[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function describePlan(plan: MigrationPlan, input: ReturnType<typeof safeMigrationInput.parse>): string[] {
  const on = (s: HostStep) => `\`${s.line}\` on ${s.host.name}`;
  return [
    `full backup: pg_dump ${plan.live} (on ${plan.tools}) into ${input.backupDir}`,
    `read-only on: ${on(plan.readOnlyOn)}`,
    `writes must be refused: ${on(plan.check)} must fail`,
    `final backup: pg_dump ${plan.live}, WAL position noted`,
    `restore into ${plan.copy}; its row counts must match the dump`,
    ...input.migration.commands.map((c, i) => `migrate ${i + 1}/${input.migration.commands.length}: \`${quoteArgv(c)}\` with PGDATABASE=${plan.copy} (on ${plan.tools})`),
    `check ${plan.copy}: ${[...plan.checks, ...input.checks].map((c) => c.name).join(', ') || 'no check queries declared'}`,
    `switch: rename ${plan.live} to ${plan.previous} and ${plan.copy} to ${plan.live}, in one transaction`,
    ...plan.restart.map((r) => `restart: ${on(r)}`),
    `read-only off: ${on(plan.readOnlyOff)}`,
    `writes must be accepted: ${on(plan.check)}`,
  ];
}

/**
 * Runs a migration on a restored copy, never on live data (KARL's "Automate On-Demand Backup / Restore /
 * Evolve"): full backup; the application read-only (and proved so: its write check must fail); final backup;
 * restore into a new database; the migration commands there; check queries; the copy renamed into the live
 * database's place in one transaction; restart; writable again, and proved so. A failure before the switch
 * leaves production untouched and writable, the copy kept; a failure after it switches back. A cancellation is
 * undone in the same way.
 */
export async function safeMigration(rawInput: SafeMigrationInput): Promise<SafeMigrationResult> {
  const input = parseInput('safeMigration', safeMigrationInput, rawInput);
  const { application } = input;
  const id = input.migration.id;
  upsertSearchAttributes([
    { key: SA_SERVICE, value: application },
    { key: SA_RELEASE, value: id },
  ]);
  const rb = new Runbook({ workflow: 'safeMigration', service: application, release: id, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, announce: !input.dryRun, notify: input.notify });
  return rb.run(() => migrate(rb, input));
}

async function migrate(rb: Runbook, input: ReturnType<typeof safeMigrationInput.parse>): Promise<SafeMigrationResult> {
  const { application } = input;
  const id = input.migration.id;
  rb.phase('plan');
  const plan = await rb.step('plan', () => db.migrationPlan({ application, migrationId: id }), { required: true });
  upsertSearchAttributes([{ key: SA_ENVIRONMENT, value: plan.environment }]);
  const result: SafeMigrationResult = { ok: false, dryRun: input.dryRun, application, database: plan.live, copy: plan.copy, previous: plan.previous, switched: false, backups: {}, readOnly: { ms: 0, periods: [] }, migration: [], checks: [] };
  if (input.dryRun) {
    await rb.succeed();
    return { ...result, ok: true, plan: describePlan(plan, input) };
  }
  if (input.approval) {
    rb.phase('approval');
    const outcome = await rb.approval('migrate', input.approval, `migrate ${application}'s ${plan.live} on a restored copy (${input.migration.commands.length} command(s)), then switch ${application} to it`, describePlan(plan, input).join('\n'));
    if (!outcome.approved) return rb.fail(outcome.reason, 'Rejected');
  }

  const run = async (s: HostStep, step: string): Promise<HostRunResult> => {
    const [r] = await host.runOnHosts({ hosts: [s.host], command: { argv: s.argv, sudo: s.sudo }, step, concurrency: 1, maxErrors: 0, timeoutMs: HOST_COMMAND_MS, capBytes: 4096 });
    return r;
  };
  const output = (r: HostRunResult) => (r.stderr || r.stdout).trim().slice(-500);
  const must = async (s: HostStep, step: string): Promise<void> => {
    const r = await run(s, step);
    if (r.state !== 'succeeded') throw ApplicationFailure.nonRetryable(`\`${s.line}\` on ${s.host.name}: ${r.error?.message ?? 'failed'}${output(r) ? `: ${output(r)}` : ''}`, 'CommandFailed');
  };
  let writable = true;
  const readOnly = async (on: boolean, step: string) => {
    await must(on ? plan.readOnlyOn : plan.readOnlyOff, step);
    const open = result.readOnly.periods.find((p) => !p.to);
    if (on && !open) result.readOnly.periods.push({ from: iso(Date.now()) });
    if (!on && open) {
      open.to = iso(Date.now());
      result.readOnly.ms += Date.parse(open.to) - Date.parse(open.from);
    }
    writable = !on;
  };
  const restart = async (step: string) => {
    for (const [i, r] of plan.restart.entries()) await must(r, `${step}:${i}`);
  };
  let copyMade = false;

  try {
    rb.phase('full backup');
    const long = (ms: number) => activitiesFor(ms, { initialInterval: '5s', maximumInterval: '1m' });
    const dumps = long(24 * 3600_000);
    result.backups.full = await rb.step('full backup', () => dumps.dumpDatabase({ database: plan.database, migrationId: id, backupDir: input.backupDir, kind: 'full' }), { required: true });

    rb.phase('read-only');
    // Registered first: a read-only switch that half worked is switched off too.
    rb.compensate('back to writable', () => readOnly(false, 'undo:read-only off'));
    result.readOnly.periods.push({ from: iso(Date.now()) });
    await rb.step('read-only on', (a) => readOnly(true, `read-only on#${a}`), { required: true });
    // Proof, not trust: a write through the application must fail now, or the copy would miss it.
    result.readOnly.refusal = await rb.step(
      'writes refused',
      async (a) => {
        const r = await run(plan.check, `writes refused#${a}`);
        if (r.state === 'succeeded') throw ApplicationFailure.nonRetryable(`the application still accepts writes in read-only mode (\`${plan.check.line}\` on ${plan.check.host.name} succeeded): nothing was copied`, 'NotReadOnly');
        if (r.error?.type !== 'NonZeroExit') throw ApplicationFailure.nonRetryable(`cannot tell whether writes are refused: ${r.error?.message}`, 'CommandFailed');
        return output(r);
      },
      { required: true },
    );

    rb.phase('final backup');
    const final = await rb.step('final backup', () => dumps.dumpDatabase({ database: plan.database, migrationId: id, backupDir: input.backupDir, kind: 'final' }), { required: true });
    result.backups.final = final;

    rb.phase('restore');
    copyMade = true;
    await rb.step(`restore into ${plan.copy}`, () => dumps.restoreCopy({ database: plan.database, copy: plan.copy, dump: final }), { required: true });

    rb.phase('migrate');
    const timeoutMs = msToNumber(input.migration.timeout as Duration);
    const migrations = long(timeoutMs * input.migration.commands.length + 24 * 3600_000);
    result.migration = await rb.step('migrate the copy', () => migrations.migrateCopy({ database: plan.database, copy: plan.copy, dump: final, commands: input.migration.commands, timeoutMs }), { required: true });

    rb.phase('verify');
    result.checks = await rb.step('check the copy', () => db.checkCopy({ database: plan.database, copy: plan.copy, checks: input.checks }), { required: true });

    rb.phase('switch');
    rb.compensate('switch back to the original data', async () => {
      // Writes must not land on either side while the databases change places.
      await readOnly(true, 'undo:read-only on');
      const { changed } = await db.switchDatabase({ database: plan.database, copy: plan.copy, previous: plan.previous, to: 'original' });
      if (changed) await restart('undo:restart');
      result.switched = false;
    });
    await rb.step('switch to the migrated copy', () => db.switchDatabase({ database: plan.database, copy: plan.copy, previous: plan.previous, to: 'copy' }), { required: true });
    result.switched = true;
    await rb.step('restart', (a) => restart(`restart#${a}`), { required: true });

    rb.phase('writable');
    await rb.step('read-only off', (a) => readOnly(false, `read-only off#${a}`), { required: true });
    await rb.step('writes accepted', (a) => must(plan.check, `writes accepted#${a}`), { required: true });
    rb.commit();
  } catch (err) {
    // A cancellation goes on up to the kernel, which undoes as for an abort: writable again, on the original data.
    if (!(err instanceof ApplicationFailure)) throw err;
    const where = result.switched
      ? `${application} is still on the migrated data (switching back failed)`
      : copyMade
        ? `${plan.live} has the original data, untouched; the copy is kept for inspection as ${plan.copy}`
        : `${plan.live} untouched`;
    throw ApplicationFailure.create({
      message: `${err.message}; ${where}; ${writable ? 'writable' : 'STILL READ-ONLY (turning it off failed)'}; read-only for ${seconds(result.readOnly.ms)}`,
      type: err.type ?? undefined,
      nonRetryable: true,
      details: [result],
    });
  }

  await rb.succeed(`${application} runs on the migrated ${plan.live} (the original kept as ${plan.previous}); read-only for ${seconds(result.readOnly.ms)}`);
  return { ...result, ok: true };
}
