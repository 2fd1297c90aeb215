// Real PostgreSQL servers for tests: one cluster per call, owned by the `postgres` system user (initdb refuses
// root), listening on 127.0.0.1 only, with password authentication so the tools' PGPASSWORD path is exercised.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from './harness';

export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  /** Runs SQL in `database` and returns the rows. */
  query<T extends Record<string, unknown> = Record<string, unknown>>(database: string, sql: string, params?: unknown[]): Promise<T[]>;
  stop(): void;
}

/** The newest installed server's binaries (Debian puts them outside PATH). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  if (!versions.length) throw new Error('PostgreSQL server not installed (Debian package postgresql); scripts/setup.sh test installs it');
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin');
}

function asPostgres(cmd: string, args: string[]): void {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', path.join(postgresBinDir(), cmd), ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error?.message}`);
}

export async function startPostgres(opts: { user?: string; password?: string } = {}): Promise<TestPostgres> {
  const user = opts.user ?? 'opsflow';
  const password = opts.password ?? `pw-${Math.random().toString(36).slice(2)}`;
  const base = mkdtempSync(path.join(tmpdir(), 'opsflow-pg-'));
  chmodSync(base, 0o755);
  // The server's socket and lock files live here too.
  execFileSync('chown', ['postgres', base]);
  const dataDir = path.join(base, 'data');
  execFileSync('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '700', dataDir]);
  const pwFile = path.join(base, 'pw');
  writeFileSync(pwFile, password);
  execFileSync('chown', ['postgres', pwFile]);
  asPostgres('initdb', ['-D', dataDir, '-U', user, '--pwfile', pwFile, '--auth', 'scram-sha-256', '-E', 'UTF8', '--locale', 'C.UTF-8']);
  rmSync(pwFile);
  const port = await freePort();
  const conf = [
    `listen_addresses = '127.0.0.1'`,
    `port = ${port}`,
    `unix_socket_directories = '${base}'`,
    // Test data is disposable: skip the fsyncs that make every commit wait for the disk.
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'max_connections = 50',
    'shared_buffers = 64MB',
  ].join('\n');
  writeFileSync(path.join(dataDir, 'postgresql.auto.conf'), `${conf}\n`);
  execFileSync('chown', ['postgres', path.join(dataDir, 'postgresql.auto.conf')]);
  try {
    asPostgres('pg_ctl', ['-D', dataDir, '-l', path.join(dataDir, 'server.log'), '-w', '-t', '60', 'start']);
  } catch (err) {
    const log = existsSync(path.join(dataDir, 'server.log')) ? readFileSync(path.join(dataDir, 'server.log'), 'utf8').slice(-2000) : '';
    rmSync(base, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${log}`);
  }

  const query: TestPostgres['query'] = async (database, sql, params) => {
    const client = new Client({ host: '127.0.0.1', port, user, password, database });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    dataDir,
    query,
    stop() {
      try {
        asPostgres('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
}
