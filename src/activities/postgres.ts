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
  counts: Record<string, number>;
  close(): Promise<void>;
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

function records(stdout: string): string[][] {
  return stdout
    .split('\0')
    .filter((r) => r.length > 0)
    .map((r) => r.replace(/^\n/, '').split(FIELD));
}

function countsOf(rows: string[][]): Record<string, number> {
  return Object.fromEntries(rows.filter((r) => r.length === 2 && !r[0].startsWith('opsflow:')).map(([table, n]) => [table, Number(n)]));
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

  /** Runs SQL with psql (stopping at the first error) and returns its rows as text fields. */
  async sql(db: DatabaseConfig, database: string, script: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string[][]> {
    const argv = ['psql', '-X', '-q', '-A', '-t', '-F', FIELD, '-0', '-v', 'ON_ERROR_STOP=1', ...this.connArgs(db, database), '-f', '-'];
    const res = await this.tools.run(db.runOn, { argv, env: this.env(db) }, { input: script, timeoutMs: opts.timeoutMs ?? 10 * 60_000, signal: opts.signal });
    if (res.code !== 0) throw toolFailure(`psql on ${database} (${res.code === null ? 'killed' : `exit ${res.code}`})`, res);
    return records(res.stdout);
  }

  /** Exact row counts per table (`schema.table`). */
  async rowCounts(db: DatabaseConfig, database: string, signal?: AbortSignal): Promise<Record<string, number>> {
    return countsOf(await this.sql(db, database, COUNT_ROWS, { timeoutMs: 6 * 3600_000, signal }));
  }

  /** The inventory's check queries: one row, one column, compared as text with `expect` (absent: any row will do). */
  async runChecks(db: DatabaseConfig, database: string, checks: CheckQuery[]): Promise<CheckOutcome[]> {
    if (!checks.length) return [];
    const script = checks.map((c, i) => `SELECT 'opsflow:check', ${i};\n${c.sql.trim().replace(/;+$/, '')};\n`).join('');
    const rows = await this.sql(db, database, script);
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

  /** What the server knows of these databases; absent ones are left out. */
  async databases(db: DatabaseConfig, names: string[]): Promise<Record<string, DatabaseInfo>> {
    const rows = await this.sql(
      db,
      MAINTENANCE_DB,
      `SELECT d.datname, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, coalesce(shobj_description(d.oid, 'pg_database'), '')
       FROM pg_database d WHERE d.datname IN (${names.map(quoteLiteral).join(', ')});\n`,
    );
    return Object.fromEntries(rows.map(([name, owner, encoding, collate, ctype, comment]) => [name, { name, owner, encoding, collate, ctype, comment }]));
  }

  /** Creates an empty database; `like` copies the owner, encoding and locale of an existing one. */
  async createDatabase(db: DatabaseConfig, name: string, like?: DatabaseInfo): Promise<void> {
    const options = like ? ` OWNER ${quoteIdent(like.owner)} ENCODING ${quoteLiteral(like.encoding)} LC_COLLATE ${quoteLiteral(like.collate)} LC_CTYPE ${quoteLiteral(like.ctype)}` : '';
    await this.sql(db, MAINTENANCE_DB, `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0${options};\n`);
  }

  /** Drops a database if it exists, closing its connections first (and refusing new ones meanwhile). */
  async dropDatabase(db: DatabaseConfig, name: string): Promise<void> {
    const lit = quoteLiteral(name);
    await this.sql(
      db,
      MAINTENANCE_DB,
      `SELECT format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', datname) FROM pg_database WHERE datname = ${lit}\n\\gexec\n` +
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${lit} AND pid <> pg_backend_pid();\n` +
        `DROP DATABASE IF EXISTS ${quoteIdent(name)};\n`,
    );
  }

  async setComment(db: DatabaseConfig, name: string, comment: string): Promise<void> {
    await this.sql(db, MAINTENANCE_DB, `COMMENT ON DATABASE ${quoteIdent(name)} IS ${quoteLiteral(comment)};\n`);
  }

  /**
   * Puts `incoming` in the place of `live` in one transaction: `live` becomes `old`, `incoming` becomes `live`,
   * both renames or neither. Sessions on either database are closed first (a rename needs them gone); one that
   * connects in between makes the attempt roll back and try again, for up to ~10 s.
   */
  async swapDatabases(db: DatabaseConfig, names: { live: string; incoming: string; old: string }): Promise<void> {
    const [live, incoming, old] = [names.live, names.incoming, names.old].map(quoteLiteral);
    await this.sql(
      db,
      MAINTENANCE_DB,
      `DO $opsflow$
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
$opsflow$;\n`,
    );
  }

  /** pg_dump in the custom format (compressed, restorable table by table) on stdout. */
  dump(db: DatabaseConfig, database: string, opts: { snapshot?: string } = {}): Promise<ToolProcess> {
    return this.tools.start(db.runOn, { argv: ['pg_dump', '-Fc', ...(opts.snapshot ? [`--snapshot=${opts.snapshot}`] : []), ...this.connArgs(db, database)], env: this.env(db) });
  }

  /** pg_restore of a custom-format dump from `input` into `database`, stopping at the first error. */
  restore(db: DatabaseConfig, database: string, input: Readable, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ToolResult> {
    return this.tools.run(db.runOn, { argv: ['pg_restore', '--exit-on-error', ...this.connArgs(db, database)], env: this.env(db) }, { input, timeoutMs: opts.timeoutMs, signal: opts.signal });
  }

  /**
   * Opens a read-only repeatable-read transaction, exports its snapshot and counts every table's rows in it. A
   * pg_dump given the snapshot dumps exactly those rows, so a restore can be checked against the counts.
   */
  async snapshot(db: DatabaseConfig, database: string): Promise<SnapshotSession> {
    const proc = await this.tools.start(db.runOn, { argv: ['psql', '-X', '-q', '-A', '-t', '-F', FIELD, '-0', '-v', 'ON_ERROR_STOP=1', ...this.connArgs(db, database), '-f', '-'], env: this.env(db) });
    let out = '';
    let err = '';
    proc.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-16 * 1024);
    });
    const ready = new Promise<string[][]>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString('utf8');
        if (out.includes('opsflow:ready')) resolve(records(out));
      });
      void proc.exited.then((exit) => reject(toolFailure(`psql snapshot session on ${database}`, { ...exit, stderr: err })));
    });
    proc.stdin.write(`BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSELECT 'opsflow:snapshot', pg_export_snapshot();\n${COUNT_ROWS}SELECT 'opsflow:ready';\n`);
    try {
      const rows = await ready;
      const id = rows.find((r) => r[0] === 'opsflow:snapshot')?.[1];
      if (!id) throw new Error(`no snapshot id from psql: ${out.slice(0, 200)}`);
      return {
        id,
        counts: countsOf(rows),
        close: async () => {
          proc.stdin.end('COMMIT;\n');
          await proc.exited;
        },
      };
    } catch (e) {
      proc.kill();
      throw e;
    }
  }
}
