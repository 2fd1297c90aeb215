// The PostgreSQL tool layer: psql, pg_dump and pg_restore against an inventory database, run where the inventory
// says (on the worker, or over SSH on the database's `runOn` host, for a database only reachable from there).
// The password goes to the tools as PGPASSWORD in their environment (see tool.ts), never on a command line, and
// the tools never prompt (-w). SQL goes to psql on stdin; names are quoted as identifiers or literals here, and
// inventory names are restricted to letters, digits, ".", "_" and "-" besides.
import type { Readable } from 'node:stream';
import type { Inventory } from '../config/inventory';
import type { CheckQuery, DatabaseConfig } from '../config/systems';
import type { ToolProcess, ToolResult, Tools } from './tool';
import { OpsError, PgConfigError, PgError, PgUnavailable, ToolMissing } from '../common/errors';

/** Where CREATE / DROP / ALTER DATABASE connect: never the database they act on. */
export const MAINTENANCE_DB = 'postgres';

export const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
export const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

const FIELD = '\x1f';
const RETRYABLE = /could not connect|connection to server|server closed the connection|terminating connection|the database system is (starting up|shutting down|in recovery)|is being accessed by other users|deadlock detected|could not serialize|timeout expired|Connection refused/i;

export interface DatabaseInfo {
  name: string;
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
  comment: string;
}

export interface CheckOutcome {
  name: string;
  ok: boolean;
  /** What the query returned; null: no row. */
  value: string | null;
  expect?: string;
}

export interface SnapshotSession {
  /** For pg_dump --snapshot: the dump sees exactly what `counts` counted. */
  id: string;
  /** Settles after `id` is given: a dump can start meanwhile. */
  counts: Promise<Record<string, number>>;
  /** Ends the transaction; stops a count still running. */
  close(): Promise<void>;
}

export interface PsqlSession {
  run(script: string): Promise<string[][]>;
  /** Ends the session once the scripts sent have run; rejects if psql failed. */
  end(): Promise<void>;
  kill(): void;
}

/** A failed tool run as an activity failure: connection trouble is retried, anything else is not. */
export function toolFailure(what: string, result: ToolResult | { code: number | null; signal: string | null; stderr: string; timedOut?: boolean }): OpsError {
  const detail = result.stderr.trim().split('\n').slice(-8).join('\n') || `exit ${result.code ?? result.signal}`;
  if (result.code === 127) return new ToolMissing(`${what}: the program was not found where it runs: ${detail}`);
  const retryable = result.timedOut || result.signal !== null || RETRYABLE.test(detail);
  const message = `${what} failed${result.timedOut ? ' (timed out)' : ''}: ${detail}`;
  return retryable ? new PgUnavailable(message) : new PgError(message);
}

// Exact row counts of every ordinary and partitioned table (partitions are counted in their parent), one query
// built by the server with identifiers quoted by format(%I), run by \gexec.
const COUNT_ROWS = `SELECT coalesce(string_agg(format('SELECT %L, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname), ' UNION ALL ' ORDER BY n.nspname, c.relname), 'SELECT NULL, NULL WHERE false')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
\\gexec
`;

const psqlFailure = (database: string, result: Parameters<typeof toolFailure>[1]) => toolFailure(`psql on ${database} (${result.code === null ? 'killed' : `exit ${result.code}`})`, result);

function records(stdout: string): string[][] {
  return stdout
    .split('\0')
    .filter((r) => r.length > 0)
    .map((r) => r.replace(/^\n/, '').split(FIELD));
}

function countsOf(rows: string[][]): Record<string, number> {
  return Object.fromEntries(rows.filter((r) => r.length === 2 && !r[0].startsWith('opsflow:')).map(([table, n]) => [table, Number(n)]));
}

const COUNTED = 'opsflow:counted';

function checksScript(checks: CheckQuery[]): string {
  return checks.map((c, i) => `SELECT 'opsflow:check', ${i};\n${c.sql.trim().replace(/;+$/, '')};\n`).join('');
}

/** Each check's first row (its fields joined), after the marker checksScript puts before it. */
function checkOutcomes(checks: CheckQuery[], rows: string[][]): CheckOutcome[] {
  const values: (string | null)[] = checks.map(() => null);
  let current = -1;
  let seen = true;
  for (const row of rows) {
    if (row[0] === 'opsflow:check') {
      current = Number(row[1]);
      seen = false;
    } else if (current >= 0 && !seen) {
      values[current] = row.join(FIELD);
      seen = true;
    }
  }
  return checks.map((c, i) => ({ name: c.name, value: values[i], expect: c.expect, ok: c.expect === undefined ? values[i] !== null : values[i] === c.expect }));
}

/** Drops a database if it exists, closing its connections first (and refusing new ones meanwhile). */
function dropScript(name: string): string {
  const lit = quoteLiteral(name);
  return (
    `SELECT format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', datname) FROM pg_database WHERE datname = ${lit}\n\\gexec\n` +
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${lit} AND pid <> pg_backend_pid();\n` +
    `DROP DATABASE IF EXISTS ${quoteIdent(name)};\n`
  );
}

export class Postgres {
  constructor(
    private readonly inventory: Inventory,
    private readonly tools: Tools,
  ) {}

  config(database: string): DatabaseConfig {
    return this.inventory.database(database);
  }

  private env(db: DatabaseConfig): Record<string, string> {
    const env: Record<string, string> = { PGCONNECT_TIMEOUT: '15', PGAPPNAME: 'opsflow' };
    if (db.passwordEnv) {
      const password = process.env[db.passwordEnv];
      if (password === undefined) throw new PgConfigError(`the password of ${db.user}@${db.host}/${db.database} comes from ${db.passwordEnv}: set it in the worker's environment`);
      env.PGPASSWORD = password;
    }
    return env;
  }

  /** A client program, from the database's `bin` directory if it names one. */
  private program(db: DatabaseConfig, name: 'psql' | 'pg_dump' | 'pg_restore'): string {
    return db.bin ? `${db.bin.replace(/\/+$/, '')}/${name}` : name;
  }

  private connArgs(db: DatabaseConfig, database: string): string[] {
    return ['-w', '-h', db.host, '-p', String(db.port), '-U', db.user, '-d', database];
  }

  /**
   * (Added for safeMigration's migration commands.) The libpq environment that points any client program at
   * `database` of this server, password included: for Tools.run's `env`, never a command line.
   */
  clientEnv(db: DatabaseConfig, database: string): Record<string, string> {
    return { ...this.env(db), PGHOST: db.host, PGPORT: String(db.port), PGUSER: db.user, PGDATABASE: database };
  }

  private psqlArgv(db: DatabaseConfig, database: string): string[] {
    return [this.program(db, 'psql'), '-X', '-q', '-A', '-t', '-F', FIELD, '-0', '-v', 'ON_ERROR_STOP=1', ...this.connArgs(db, database), '-f', '-'];
  }

  /** Runs SQL with psql (stopping at the first error) and returns its rows as text fields. */
  async sql(db: DatabaseConfig, database: string, script: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string[][]> {
    const argv = this.psqlArgv(db, database);
    const res = await this.tools.run(db.runOn, { argv, env: this.env(db) }, { input: script, timeoutMs: opts.timeoutMs ?? 10 * 60_000, signal: opts.signal });
    if (res.code !== 0) throw psqlFailure(database, res);
    return records(res.stdout);
  }

  /** Exact row counts per table (`schema.table`). */
  async rowCounts(db: DatabaseConfig, database: string, signal?: AbortSignal): Promise<Record<string, number>> {
    return countsOf(await this.sql(db, database, COUNT_ROWS, { timeoutMs: 6 * 3600_000, signal }));
  }

  /** The inventory's check queries: one row, one column, compared as text with `expect` (absent: any row will do). */
  async runChecks(db: DatabaseConfig, database: string, checks: CheckQuery[]): Promise<CheckOutcome[]> {
    if (!checks.length) return [];
    return checkOutcomes(checks, await this.sql(db, database, checksScript(checks)));
  }

  /**
   * rowCounts and runChecks in one session, and then, if `comment` gives one for what they found, that comment on
   * the database: one connection where a restore's verification would open three.
   */
  async rowCountsAndChecks(
    db: DatabaseConfig,
    database: string,
    checks: CheckQuery[],
    opts: { signal?: AbortSignal; comment?: (found: { counts: Record<string, number>; checks: CheckOutcome[] }) => string | undefined } = {},
  ): Promise<{ counts: Record<string, number>; checks: CheckOutcome[] }> {
    const session = await this.session(db, database, opts.signal);
    try {
      const rows = await session.run(`${COUNT_ROWS}SELECT '${COUNTED}';\n${checksScript(checks)}`);
      const split = rows.findIndex((r) => r[0] === COUNTED);
      const found = { counts: countsOf(rows.slice(0, split)), checks: checkOutcomes(checks, rows.slice(split + 1)) };
      const comment = opts.comment?.(found);
      if (comment !== undefined) await session.run(`COMMENT ON DATABASE ${quoteIdent(database)} IS ${quoteLiteral(comment)};\n`);
      await session.end();
      return found;
    } finally {
      session.kill();
    }
  }

  /**
   * A psql session that runs scripts in turn, each answered with its rows once psql has run it (psql writes each
   * query's rows as the query ends). A script that fails ends the session (ON_ERROR_STOP) with psql's error.
   */
  async session(db: DatabaseConfig, database: string, signal?: AbortSignal): Promise<PsqlSession> {
    const proc = await this.tools.start(db.runOn, { argv: this.psqlArgv(db, database), env: this.env(db) });
    let out = '';
    let err = '';
    proc.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-16 * 1024);
    });
    let over = false;
    const kill = () => {
      if (!over) proc.kill();
    };
    signal?.addEventListener('abort', kill, { once: true });
    const exited = proc.exited.then((exit) => {
      over = true;
      signal?.removeEventListener('abort', kill);
      return exit;
    });
    const failed = exited.then((exit) => Promise.reject(psqlFailure(database, { ...exit, stderr: err })));
    failed.catch(() => undefined);
    let look = () => {};
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      look();
    });
    let scripts = 0;
    return {
      run(script) {
        const marker = `opsflow:done:${scripts++}\0`;
        proc.stdin.write(`${script}SELECT '${marker.slice(0, -1)}';\n`);
        return Promise.race([
          failed,
          new Promise<string[][]>((resolve) => {
            look = () => {
              const at = out.indexOf(marker);
              if (at < 0) return;
              const rows = records(out.slice(0, at));
              out = out.slice(at + marker.length);
              resolve(rows);
            };
            look();
          }),
        ]);
      },
      async end() {
        proc.stdin.end();
        const exit = await exited;
        if (exit.code !== 0) await failed;
      },
      kill,
    };
  }

  /** A script on the maintenance database: in the session given (one connected there), or a psql of its own. */
  private maintenance(db: DatabaseConfig, script: string, via?: PsqlSession): Promise<string[][]> {
    return via ? via.run(script) : this.sql(db, MAINTENANCE_DB, script);
  }

  /** What the server knows of these databases; absent ones are left out. */
  async databases(db: DatabaseConfig, names: string[], via?: PsqlSession): Promise<Record<string, DatabaseInfo>> {
    const rows = await this.maintenance(
      db,
      `SELECT d.datname, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, coalesce(shobj_description(d.oid, 'pg_database'), '')
       FROM pg_database d WHERE d.datname IN (${names.map(quoteLiteral).join(', ')});\n`,
      via,
    );
    return Object.fromEntries(rows.map(([name, owner, encoding, collate, ctype, comment]) => [name, { name, owner, encoding, collate, ctype, comment }]));
  }

  /**
   * Creates `name` empty (dropping what has that name first) with the owner, encoding and locale of `like` where it
   * exists, and the comment given: one psql session for what would take four.
   */
  async recreateDatabase(db: DatabaseConfig, name: string, opts: { like: string; comment?: string }): Promise<void> {
    const [ident, lit] = [quoteIdent(name), quoteLiteral(name)];
    await this.sql(
      db,
      MAINTENANCE_DB,
      dropScript(name) +
        `SELECT coalesce((SELECT format('CREATE DATABASE %I TEMPLATE template0 OWNER %I ENCODING %L LC_COLLATE %L LC_CTYPE %L', ${lit}, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype) FROM pg_database WHERE datname = ${quoteLiteral(opts.like)}), format('CREATE DATABASE %I TEMPLATE template0', ${lit}))\n\\gexec\n` +
        (opts.comment === undefined ? '' : `COMMENT ON DATABASE ${ident} IS ${quoteLiteral(opts.comment)};\n`),
    );
  }

  async dropDatabase(db: DatabaseConfig, name: string, via?: PsqlSession): Promise<void> {
    await this.maintenance(db, dropScript(name), via);
  }

  async setComment(db: DatabaseConfig, name: string, comment: string): Promise<void> {
    await this.sql(db, MAINTENANCE_DB, `COMMENT ON DATABASE ${quoteIdent(name)} IS ${quoteLiteral(comment)};\n`);
  }

  /**
   * Puts `incoming` in the place of `live` in one transaction: `live` becomes `old`, `incoming` becomes `live`,
   * both renames or neither. Sessions on either database are closed first (a rename needs them gone); one that
   * connects in between makes the attempt roll back and try again, for up to ~10 s. `dropOld`: a database named
   * `old` is dropped before (a leftover) and after (the data swapped out), in the same psql session.
   */
  async swapDatabases(db: DatabaseConfig, names: { live: string; incoming: string; old: string }, opts: { dropOld?: boolean; via?: PsqlSession } = {}): Promise<void> {
    const [live, incoming, old] = [names.live, names.incoming, names.old].map(quoteLiteral);
    const drop = opts.dropOld ? dropScript(names.old) : '';
    await this.maintenance(
      db,
      `${drop}DO $opsflow$
DECLARE tries int := 0;
BEGIN
  LOOP
    BEGIN
      PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (${live}, ${incoming}) AND pid <> pg_backend_pid();
      IF EXISTS (SELECT 1 FROM pg_database WHERE datname = ${live}) THEN
        EXECUTE format('ALTER DATABASE %I RENAME TO %I', ${live}, ${old});
      END IF;
      EXECUTE format('ALTER DATABASE %I RENAME TO %I', ${incoming}, ${live});
      EXIT;
    EXCEPTION WHEN object_in_use THEN
      tries := tries + 1;
      IF tries >= 50 THEN RAISE; END IF;
      PERFORM pg_sleep(0.2);
    END;
  END LOOP;
END
$opsflow$;\n${drop}`,
      opts.via,
    );
  }

  /** pg_dump in the custom format (compressed at the database's dumpCompression, restorable table by table) on stdout. */
  dump(db: DatabaseConfig, database: string, opts: { snapshot?: string } = {}): Promise<ToolProcess> {
    return this.tools.start(db.runOn, { argv: [this.program(db, 'pg_dump'), '-Fc', `-Z${db.dumpCompression}`, ...(opts.snapshot ? [`--snapshot=${opts.snapshot}`] : []), ...this.connArgs(db, database)], env: this.env(db) });
  }

  /** pg_restore of a custom-format dump from `input` into `database`, stopping at the first error. */
  restore(db: DatabaseConfig, database: string, input: Readable, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ToolResult> {
    return this.tools.run(db.runOn, { argv: [this.program(db, 'pg_restore'), '--exit-on-error', ...this.connArgs(db, database)], env: this.env(db) }, { input, timeoutMs: opts.timeoutMs, signal: opts.signal });
  }

  /**
   * Opens a read-only repeatable-read transaction, exports its snapshot and counts every table's rows in it. A
   * pg_dump given the snapshot dumps exactly those rows, so a restore can be checked against the counts. The id
   * comes back as soon as the snapshot exists, so the dump can run while the rows are counted.
   */
  async snapshot(db: DatabaseConfig, database: string): Promise<SnapshotSession> {
    const session = await this.session(db, database);
    try {
      const [[, id] = []] = await session.run(`BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSELECT 'opsflow:snapshot', pg_export_snapshot();\n`);
      if (!id) throw new Error(`psql on ${database} gave no snapshot id`);
      let counted = false;
      const counts = session.run(COUNT_ROWS).then(countsOf);
      counts.then(() => (counted = true), session.kill);
      let closed: Promise<void> | undefined;
      return {
        id,
        counts,
        close: () =>
          (closed ??= (async () => {
            // Closed before the count ended (the dump failed): no one will read it.
            if (!counted) return session.kill();
            try {
              await session.run('COMMIT;\n');
              await session.end();
            } catch {
              // A read-only transaction has nothing to lose: ended either way.
              session.kill();
            }
          })()),
      };
    } catch (e) {
      session.kill();
      throw e;
    }
  }
}
