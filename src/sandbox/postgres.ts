// PostgreSQL clusters owned by the `postgres` system user (initdb refuses root), listening on 127.0.0.1 only, with
// their socket in their own directory: one per test that needs one, and the sandbox's pair for good.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The newest installed server's binaries (Debian puts them outside PATH); undefined when there is none. */
export function findPostgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  return versions.length ? path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin') : undefined;
}

export function postgresBinDir(): string {
  const dir = findPostgresBinDir();
  if (!dir) throw new Error('PostgreSQL server not installed (Debian package postgresql); scripts/setup.sh test installs it');
  return dir;
}

function asPostgres(cmd: string, args: string[]): void {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', path.join(postgresBinDir(), cmd), ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error?.message}`);
}

export interface ClusterOptions {
  /** The cluster's directory: its data (BASE/data) and socket. */
  base: string;
  port: number;
  user: string;
  /** With a password, scram-sha-256 authentication; without, trust (the sandbox's loopback-only clusters). */
  password?: string;
}

export const clusterDataDir = (base: string) => path.join(base, 'data');

/** Creates the cluster in BASE unless it exists; whether it did. */
export function initCluster(opts: ClusterOptions): boolean {
  const dataDir = clusterDataDir(opts.base);
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) return false;
  execFileSync('install', ['-d', '-o', 'postgres', '-m', '755', opts.base]);
  execFileSync('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '700', dataDir]);
  const auth = ['--auth', 'trust'];
  if (opts.password !== undefined) {
    const pwFile = path.join(opts.base, 'pw');
    writeFileSync(pwFile, opts.password);
    execFileSync('chown', ['postgres', pwFile]);
    auth.splice(0, 2, '--pwfile', pwFile, '--auth', 'scram-sha-256');
  }
  try {
    asPostgres('initdb', ['-D', dataDir, '-U', opts.user, ...auth, '-E', 'UTF8', '--locale', 'C.UTF-8']);
  } finally {
    rmSync(path.join(opts.base, 'pw'), { force: true });
  }
  const conf = [
    `listen_addresses = '127.0.0.1'`,
    `port = ${opts.port}`,
    `unix_socket_directories = '${opts.base}'`,
    // Test and sandbox data is disposable: skip the fsyncs that make every commit wait for the disk.
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'max_connections = 50',
    'shared_buffers = 64MB',
  ].join('\n');
  writeFileSync(path.join(dataDir, 'postgresql.auto.conf'), `${conf}\n`);
  execFileSync('chown', ['postgres', path.join(dataDir, 'postgresql.auto.conf')]);
  chmodSync(opts.base, 0o755);
  return true;
}

/** Starts the cluster in BASE and waits until it accepts connections; the error carries the end of its log. */
export function startCluster(base: string): void {
  const dataDir = clusterDataDir(base);
  const log = path.join(dataDir, 'server.log');
  try {
    asPostgres('pg_ctl', ['-D', dataDir, '-l', log, '-w', '-t', '60', 'start']);
  } catch (err) {
    const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
    throw new Error(`${(err as Error).message}\n${tail}`, { cause: err });
  }
}

/** The postmaster's pid while the cluster runs (postmaster.pid's first line). */
export const clusterPidFile = (base: string) => path.join(clusterDataDir(base), 'postmaster.pid');

export function stopCluster(base: string): void {
  try {
    asPostgres('pg_ctl', ['-D', clusterDataDir(base), '-m', 'immediate', '-w', 'stop']);
  } catch {
    // already stopped
  }
}
