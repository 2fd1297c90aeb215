// Activities for safeMigration: migrations run on a restored copy of the database, never on live data.
//
// The copy carries its state in its PostgreSQL comment, `opsflow safeMigration <workflow> run <run>: <state>`
// (restoring, restored, migrating, migrated), so every step is check-then-act: a retry finds what an earlier
// attempt did. A migration interrupted halfway (its worker died) is never resumed on a half-migrated copy: the
// copy is restored again from the final dump and every command runs again on it, so no command's effect is
// applied twice. The switch renames both databases in one transaction (Postgres.swapDatabases): the
// application's database name never changes, and the original data stays beside it under another name.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { Context } from '@temporalio/activity';
import { quoteArgv } from '../common/shell';
import { programArgv } from '../common/command';
import type { Inventory, ResolvedHost } from '../config/inventory';
import type { CheckQuery, DatabaseConfig, HostCommand } from '../config/systems';
import { Postgres, toolFailure, type CheckOutcome } from './postgres';
import type { SshPool } from './ssh/pool';
import { heartbeatEvery, Tools } from './tool';
import { ChecksFailed, CopyExists, CopyNotReady, DumpCorrupt, InvalidInput, MigrationFailed, OriginalMissing, RestoreMismatch, UnknownTarget } from '../common/errors';

/** A command of the application's, on the host the inventory names. */
export interface HostStep {
  host: ResolvedHost;
  argv: string[];
  sudo: boolean;
  /** As a shell would show it, for plans and messages. */
  line: string;
}

export interface MigrationPlan {
  application: string;
  environment: string;
  /** The inventory's name of the database, and its name on the server. */
  database: string;
  live: string;
  /** The restored copy the migration runs on; after the switch it is `live`. */
  copy: string;
  /** The original data's name after the switch. */
  previous: string;
  /** Where pg_dump, pg_restore, psql and the migration commands run: `worker` or `environment/host`. */
  tools: string;
  checks: CheckQuery[];
  readOnlyOn: HostStep;
  readOnlyOff: HostStep;
  restart: HostStep[];
  check: HostStep;
}

export interface DumpResult {
  kind: 'full' | 'final';
  file: string;
  size: number;
  sha256: string;
  /** Rows per table in the snapshot the dump was taken from. */
  tables: Record<string, number>;
  /** pg_current_wal_lsn() when the dump started: where the write-ahead log stood. */
  walLsn: string;
  startedAt: string;
  finishedAt: string;
  /** An earlier attempt of this run already wrote it. */
  reused: boolean;
}

export interface CommandOutcome {
  command: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

type CopyState = 'restoring' | 'restored' | 'migrating' | 'migrated';

const tail = (s: string, n = 2000) => (s.length > n ? `…${s.slice(-n)}` : s);

/** Heartbeats while `fn` works: the workflow notices a dead worker within the heartbeat timeout, however long the step. */
async function beating<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const stop = heartbeatEvery(5_000, () => ({ phase: what }));
  try {
    return await fn();
  } finally {
    stop();
  }
}

function currentRun(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new InvalidInput('this activity must run for a workflow');
  return run;
}

/** This run's mark on a copy; a database without it is somebody else's and is never touched. */
function markOf(): string {
  const { workflowId, runId } = currentRun();
  return `opsflow safeMigration ${workflowId} run ${runId}: `;
}

/** `<base><suffix>` within PostgreSQL's 63-byte limit for names. */
function sideName(base: string, suffix: string): string {
  return `${base.slice(0, 63 - Buffer.byteLength(suffix))}${suffix}`;
}

export function createMigrationActivities(deps: { inventory: Inventory; ssh: SshPool }) {
  const { inventory } = deps;
  const tools = new Tools(deps);
  const postgres = new Postgres(inventory, tools);

  async function stateOf(db: DatabaseConfig, name: string): Promise<{ exists: boolean; ours: boolean; unmarked?: boolean; state?: CopyState }> {
    const info = (await postgres.databases(db, [name]))[name];
    if (!info) return { exists: false, ours: false };
    const mark = markOf();
    if (!info.comment.startsWith(mark)) return { exists: true, ours: false, unmarked: info.comment === '' };
    return { exists: true, ours: true, state: info.comment.slice(mark.length) as CopyState };
  }

  const stateComment = (state: CopyState) => `${markOf()}${state}`;
  const setState = (db: DatabaseConfig, name: string, state: CopyState) => postgres.setComment(db, name, stateComment(state));

  /** The dump file of this run on the worker: named by database, migration and run, so a retry finds its own. */
  function dumpFile(backupDir: string, live: string, migrationId: string, kind: 'full' | 'final'): string {
    const { workflowId, runId } = currentRun();
    const run = createHash('sha256').update(`${workflowId}\0${runId}`).digest('hex').slice(0, 12);
    return path.join(backupDir, `${live}-${migrationId}-${run}-${kind}.dump`);
  }

  /** Drops a leftover of this run, creates the copy like the live database and restores the dump into it; checks row counts. */
  async function restore(db: DatabaseConfig, copy: string, dump: DumpResult): Promise<void> {
    const ctx = Context.current();
    const current = await stateOf(db, copy);
    // No comment at all: this run created it and died before marking it (the plan found the name free).
    if (current.exists && !current.ours && !current.unmarked) throw new CopyExists(`${copy} exists and is not this run's copy: nothing was restored`);
    await postgres.recreateDatabase(db, copy, { like: db.database, comment: stateComment('restoring') });
    const { size } = await stat(dump.file);
    if (size !== dump.size) throw new DumpCorrupt(`the dump ${dump.file} is ${size} bytes, ${dump.size} were written: it changed since`);
    let fed = 0;
    const stop = heartbeatEvery(5_000, () => ({ phase: 'restore', bytes: fed, of: size }));
    try {
      const input = createReadStream(dump.file);
      input.on('data', (d) => (fed += d.length));
      const res = await postgres.restore(db, copy, input, { timeoutMs: ctx.info.startToCloseTimeoutMs, signal: ctx.cancellationSignal });
      if (res.code !== 0) throw toolFailure(`pg_restore of ${path.basename(dump.file)} into ${copy}`, res);
      const counts = await postgres.rowCounts(db, copy, ctx.cancellationSignal);
      const problems = Object.entries(dump.tables)
        .filter(([table, n]) => counts[table] !== n)
        .map(([table, n]) => `${table}: ${counts[table] ?? 'missing'} rows, the dump has ${n}`);
      if (problems.length) throw new RestoreMismatch(`the restore into ${copy} does not match the dump: ${problems.slice(0, 10).join('; ')}`);
    } finally {
      stop();
    }
    await setState(db, copy, 'restored');
  }

  async function plan(input: { application: string; migrationId: string }): Promise<MigrationPlan> {
    const app = inventory.application(input.application);
    const db = postgres.config(app.database);
    const step = (c: HostCommand): HostStep => {
      const [host] = inventory.resolve(app.environment, { hosts: [c.host] });
      return { host, argv: c.command, sudo: c.sudo, line: quoteArgv(programArgv({ argv: c.command, sudo: c.sudo })) };
    };
    const live = db.database;
    const copy = sideName(live, `_mig_${input.migrationId}`);
    const previous = sideName(live, `_pre_${input.migrationId}`);
    const infos = await postgres.databases(db, [live, copy, previous]);
    if (!infos[live]) throw new UnknownTarget(`database ${live} does not exist on ${db.host}:${db.port}`);
    if (infos[previous]) throw new InvalidInput(`${previous} exists already (an earlier migration "${input.migrationId}"?): choose another migration id`);
    if (infos[copy] && !infos[copy].comment.startsWith(markOf())) throw new InvalidInput(`${copy} exists already (an earlier migration "${input.migrationId}"?): choose another migration id`);
    return {
      application: input.application,
      environment: app.environment,
      database: app.database,
      live,
      copy,
      previous,
      tools: db.runOn ? `${db.runOn.environment}/${db.runOn.host}` : 'worker',
      checks: db.checks,
      readOnlyOn: step(app.readOnly.on),
      readOnlyOff: step(app.readOnly.off),
      restart: app.restart.map(step),
      check: step(app.check),
    };
  }

  return {
    /** The application, its database and the names this migration uses; refuses names that are taken. */
    async migrationPlan(input: { application: string; migrationId: string }): Promise<MigrationPlan> {
      return beating('plan', () => plan(input));
    },

    /**
     * pg_dump (custom format) of the live database into a file on the worker, from an exported snapshot whose row
     * counts are recorded with it. Written under a temporary name and renamed, its manifest last: a dump with a
     * manifest is complete, and a retry returns it instead of dumping again.
     */
    async dumpDatabase(input: { database: string; migrationId: string; backupDir: string; kind: 'full' | 'final' }): Promise<DumpResult> {
      const db = postgres.config(input.database);
      const file = dumpFile(input.backupDir, db.database, input.migrationId, input.kind);
      try {
        return { ...(JSON.parse(await readFile(`${file}.json`, 'utf8')) as DumpResult), reused: true };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await mkdir(input.backupDir, { recursive: true, mode: 0o700 });
      const startedAt = new Date().toISOString();
      const partial = `${file}.partial`;
      const hash = createHash('sha256');
      let size = 0;
      const stop = heartbeatEvery(5_000, () => ({ phase: `${input.kind} dump`, bytes: size }));
      const ctx = Context.current();
      let walLsn: string;
      let snapshot: Awaited<ReturnType<Postgres['snapshot']>>;
      let tables: Record<string, number>;
      try {
        [[walLsn]] = await postgres.sql(db, db.database, 'SELECT pg_current_wal_lsn();\n');
        // Counting every table's rows takes a while on a big database: the heartbeats already run.
        snapshot = await postgres.snapshot(db, db.database);
        // A failed count ends the snapshot's session itself.
        tables = await snapshot.counts;
      } catch (err) {
        stop();
        throw err;
      }
      try {
        const dump = await postgres.dump(db, db.database, { snapshot: snapshot.id });
        const onCancel = () => dump.kill();
        ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
        let stderr = '';
        dump.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-16 * 1024)));
        const out = createWriteStream(partial, { mode: 0o600 });
        dump.stdout.on('data', (d: Buffer) => {
          hash.update(d);
          size += d.length;
        });
        dump.stdout.pipe(out);
        const [exit] = await Promise.all([dump.exited, once(out, 'close')]);
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
        if (exit.code !== 0) throw toolFailure(`pg_dump of ${db.database} on ${dump.where}`, { ...exit, stderr });
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      } finally {
        stop();
        await snapshot.close();
      }
      await rename(partial, file);
      const result: DumpResult = { kind: input.kind, file, size, sha256: hash.digest('hex'), tables, walLsn, startedAt, finishedAt: new Date().toISOString(), reused: false };
      await writeFile(`${file}.json.partial`, JSON.stringify(result, null, 2), { mode: 0o600 });
      await rename(`${file}.json.partial`, `${file}.json`);
      return result;
    },

    /** Restores the final dump into the copy (a new database beside the live one), unless this run already did. */
    async restoreCopy(input: { database: string; copy: string; dump: DumpResult }): Promise<{ copy: string; tables: number; rows: number; reused: boolean }> {
      const db = postgres.config(input.database);
      const rows = Object.values(input.dump.tables).reduce((a, b) => a + b, 0);
      return beating('restore', async () => {
        const reused = (await stateOf(db, input.copy)).state === 'restored';
        if (!reused) await restore(db, input.copy, input.dump);
        return { copy: input.copy, tables: Object.keys(input.dump.tables).length, rows, reused };
      });
    },

    /**
     * Runs the migration commands, in order, against the copy: each an argv, run where the database's tools run,
     * with PGHOST, PGPORT, PGUSER, PGDATABASE (the copy) and PGPASSWORD in its environment. A copy that an
     * interrupted attempt left half-migrated is restored again first.
     */
    async migrateCopy(input: { database: string; copy: string; dump: DumpResult; commands: string[][]; timeoutMs: number }): Promise<CommandOutcome[]> {
      const db = postgres.config(input.database);
      const ctx = Context.current();
      const current = await stateOf(db, input.copy);
      if (current.exists && !current.ours && !current.unmarked) throw new CopyExists(`${input.copy} is not this run's copy`);
      if (current.state === 'migrated') return [];
      if (current.state !== 'restored') await beating('restore again', () => restore(db, input.copy, input.dump));
      await setState(db, input.copy, 'migrating');
      const outcomes: CommandOutcome[] = [];
      for (const [i, argv] of input.commands.entries()) {
        const command = quoteArgv(argv);
        const stop = heartbeatEvery(5_000, () => ({ phase: 'migrate', command: i + 1, of: input.commands.length }));
        try {
          const res = await tools.run(db.runOn, { argv, env: postgres.clientEnv(db, input.copy) }, { timeoutMs: input.timeoutMs, signal: ctx.cancellationSignal });
          outcomes.push({ command, exitCode: res.code, stdout: tail(res.stdout), stderr: tail(res.stderr) });
          if (res.code !== 0) {
            const why = res.code === 127 ? 'the program was not found' : res.timedOut ? 'timed out' : `exit ${res.code ?? res.signal}`;
            throw new MigrationFailed(`migration command ${i + 1} of ${input.commands.length} failed on ${input.copy} (${why}): ${command}${res.stderr.trim() ? `: ${tail(res.stderr.trim(), 1000)}` : ''}`);
          }
        } finally {
          stop();
        }
      }
      await setState(db, input.copy, 'migrated');
      return outcomes;
    },

    /** The database's check queries and the migration's own, on the migrated copy; ChecksFailed names each failing one. */
    async checkCopy(input: { database: string; copy: string; checks: CheckQuery[] }): Promise<CheckOutcome[]> {
      const db = postgres.config(input.database);
      if ((await stateOf(db, input.copy)).state !== 'migrated') throw new CopyNotReady(`${input.copy} is not a migrated copy of this run`);
      const outcomes = await beating('check', () => postgres.runChecks(db, input.copy, [...db.checks, ...input.checks]));
      const failing = outcomes.filter((c) => !c.ok);
      if (failing.length) throw new ChecksFailed(`check(s) failed on ${input.copy}: ${failing.map((c) => `${c.name} returned ${c.value ?? 'no row'}${c.expect !== undefined ? `, want ${c.expect}` : ''}`).join('; ')}`, { details: [outcomes] });
      return outcomes;
    },

    /**
     * Puts the migrated copy in the live database's place (`to: copy`) or the original back (`to: original`), both
     * renames in one transaction. Whichever way, a database already where it should be is left alone.
     */
    async switchDatabase(input: { database: string; copy: string; previous: string; to: 'copy' | 'original' }): Promise<{ changed: boolean }> {
      const db = postgres.config(input.database);
      const live = db.database;
      const migrated = `${markOf()}migrated`;
      const infos = await postgres.databases(db, [live, input.copy, input.previous]);
      if (input.to === 'copy') {
        if (infos[live]?.comment === migrated) return { changed: false };
        if (infos[input.copy]?.comment !== migrated) throw new CopyNotReady(`${input.copy} is not a migrated copy of this run: nothing was switched`);
        if (infos[input.previous]) throw new InvalidInput(`${input.previous} exists: nothing was switched`);
        await beating('switch', () => postgres.swapDatabases(db, { live, incoming: input.copy, old: input.previous }));
        return { changed: true };
      }
      if (infos[live]?.comment !== migrated) return { changed: false };
      if (!infos[input.previous]) throw new OriginalMissing(`the original data (${input.previous}) is gone: ${live} stays on the migrated copy`);
      await beating('switch back', () => postgres.swapDatabases(db, { live, incoming: input.previous, old: input.copy }));
      return { changed: true };
    },
  };
}
