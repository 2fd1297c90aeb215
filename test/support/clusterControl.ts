// The Temporal cluster of scripts/cluster.sh as tests and the bench drive it: bring it up or down, SIGKILL its
// server, restart its PostgreSQL. Settings as the script's: OPSFLOW_CLUSTER_DIR, _PORT, _UI_PORT, _PG_PORT.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT } from './harness';

export interface ClusterSettings {
  dir: string;
  /** Frontend gRPC; the server also takes port+1..+10 and port-300..-294. */
  port: number;
  uiPort: number;
  pgPort: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The cluster with these settings (it need not exist yet: up() creates it). */
export function clusterAt(s: ClusterSettings) {
  const scriptEnv = { ...process.env, OPSFLOW_CLUSTER_DIR: s.dir, OPSFLOW_CLUSTER_PORT: String(s.port), OPSFLOW_CLUSTER_UI_PORT: String(s.uiPort), OPSFLOW_CLUSTER_PG_PORT: String(s.pgPort) };
  const pid = (name: string) => Number(readFileSync(path.join(s.dir, `${name}.pid`), 'utf8').trim());
  const script = (cmd: 'up' | 'down') => {
    try {
      execFileSync('bash', [path.join(ROOT, 'scripts/cluster.sh'), cmd], { cwd: ROOT, env: scriptEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000 });
    } catch (err) {
      const { stderr, message } = err as { stderr?: Buffer; message: string };
      throw new Error(stderr?.toString().trim().split('\n').slice(-5).join('\n') || message);
    }
  };
  return {
    ...s,
    settings: s,
    address: `127.0.0.1:${s.port}`,
    uiUrl: `http://127.0.0.1:${s.uiPort}`,
    /** PostgreSQL's password for the `temporal` user (the script writes it, mode 600). */
    password: () => readFileSync(path.join(s.dir, 'postgres.password'), 'utf8').trim(),
    serverPid: () => pid('server'),
    /** Whether its server is running now (no pid file: never started here). */
    serverRunning(): boolean {
      try {
        return alive(pid('server'));
      } catch {
        return false;
      }
    },

    /** Starts whatever part is not running (all of it the first time, building the programs if need be). */
    async up(): Promise<void> {
      script('up');
    },

    /** Stops the UI, the server and PostgreSQL; the data stays in the directory. */
    async down(): Promise<void> {
      script('down');
    },

    /** SIGKILLs the Temporal server, as a crash or an OOM kill would, and waits until it is gone. */
    killServer(): void {
      const p = pid('server');
      process.kill(p, 'SIGKILL');
      while (alive(p)) execFileSync('sleep', ['0.1']);
    },

    /** Restarts PostgreSQL (fast shutdown: open connections are cut) and waits until it accepts connections. */
    restartPostgres(): void {
      const bin = execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1'], { encoding: 'utf8' }).trim();
      const argv = [path.join(bin, 'pg_ctl'), '-D', path.join(s.dir, 'postgres/data'), '-m', 'fast', '-w', 'restart'];
      // As root, PostgreSQL runs as the postgres user (scripts/cluster.sh).
      if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', ...argv], { cwd: '/', stdio: 'ignore' });
      else execFileSync(argv[0], argv.slice(1), { stdio: 'ignore' });
    },
  };
}

export type Cluster = ReturnType<typeof clusterAt>;

/** The settings the environment names; `defaults` for what it leaves unset (else the script's own defaults). */
export function clusterSettingsFromEnv(defaults: Partial<ClusterSettings> = {}): ClusterSettings {
  const env = process.env;
  return {
    dir: path.resolve(env.OPSFLOW_CLUSTER_DIR ?? defaults.dir ?? path.join(ROOT, 'data/cluster')),
    port: Number(env.OPSFLOW_CLUSTER_PORT ?? defaults.port ?? 7333),
    uiPort: Number(env.OPSFLOW_CLUSTER_UI_PORT ?? defaults.uiPort ?? 8333),
    pgPort: Number(env.OPSFLOW_CLUSTER_PG_PORT ?? defaults.pgPort ?? 5533),
  };
}

/** The cluster OPSFLOW_CLUSTER_* names, else the script's defaults. */
export const cluster = clusterAt(clusterSettingsFromEnv());

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Ports for a fresh cluster, every one the server takes free at the moment of asking. */
export async function freeClusterPorts(): Promise<Omit<ClusterSettings, 'dir'>> {
  for (let tries = 0; tries < 50; tries++) {
    // Below 32768: Temporal keeps its ports in a smallint column of PostgreSQL (cluster_membership).
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const uiPort = port + 20;
    const pgPort = port + 21;
    const needed = [...Array.from({ length: 11 }, (_, i) => port + i), ...Array.from({ length: 7 }, (_, i) => port - 300 + i), uiPort, pgPort];
    if ((await Promise.all(needed.map(portFree))).every(Boolean)) return { port, uiPort, pgPort };
  }
  throw new Error('no free ports for a Temporal cluster after 50 tries');
}
