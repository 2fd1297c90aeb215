// Real PostgreSQL servers for tests: one cluster per call (src/sandbox/postgres.ts), with password authentication
// so the tools' PGPASSWORD path is exercised.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { clusterDataDir, initCluster, startCluster, stopCluster } from '../../src/sandbox/postgres';
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

export async function startPostgres(opts: { user?: string; password?: string } = {}): Promise<TestPostgres> {
  const user = opts.user ?? 'opsflow';
  const password = opts.password ?? `pw-${Math.random().toString(36).slice(2)}`;
  const tmp = mkdtempSync(path.join(tmpdir(), 'opsflow-pg-'));
  // The postgres user reaches the cluster's directory through it.
  chmodSync(tmp, 0o755);
  const base = path.join(tmp, 'pg');
  const port = await freePort();
  try {
    initCluster({ base, port, user, password });
    startCluster(base);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
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
    dataDir: clusterDataDir(base),
    query,
    stop() {
      stopCluster(base);
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
