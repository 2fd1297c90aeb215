// A real HAProxy (Debian's) on loopback in front of the test service's nodes, with its runtime API socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseStat } from '../../src/activities/haproxy';
import { freePort, waitFor } from './harness';

export interface Haproxy {
  url: string;
  socket: string;
  /** Each server of the backend and its state (`UP` is in rotation; `MAINT`, `DRAIN` not), without HAProxy's check count ("UP 1/2"). */
  servers(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** One runtime API command over the admin socket, straight from the test. */
function adminCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const conn = net.connect(socket, () => conn.end(`${command}\n`));
    conn.on('data', (d) => (out += d.toString()));
    conn.on('end', () => resolve(out));
    conn.on('error', reject);
  });
}

export async function startHaproxy(backend: string, servers: { name: string; address: string; port: number }[]): Promise<Haproxy> {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-haproxy-'));
  // Balancer hosts reach the socket as the fleet's SSH user.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const socket = path.join(dir, 'admin.sock');
  writeFileSync(
    path.join(dir, 'haproxy.cfg'),
    `global
  stats socket ${socket} mode 666 level admin
  maxconn 256
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  retries 3
  option redispatch
frontend fe
  bind 127.0.0.1:${port}
  default_backend ${backend}
backend ${backend}
  balance roundrobin
  option httpchk GET /health
  http-check expect status 200
  default-server inter 200ms fall 2 rise 2
${servers.map((s) => `  server ${s.name} ${s.address}:${s.port} check`).join('\n')}
`,
  );
  const proc: ChildProcess = spawn('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(() => existsSync(socket) || proc.exitCode !== null, 'HAProxy to start', 10_000);
  if (proc.exitCode !== null) throw new Error(`haproxy exited ${proc.exitCode}: ${stderr}`);
  return {
    url: `http://127.0.0.1:${port}/`,
    socket,
    async servers() {
      const stats = parseStat(await adminCommand(socket, 'show stat')).filter((st) => st.backend === backend);
      return Object.fromEntries(stats.map((st) => [st.server, st.status.split(' ')[0]]));
    },
    async stop() {
      proc.kill('SIGTERM');
      await waitFor(() => proc.exitCode !== null || proc.signalCode !== null, 'HAProxy to stop', 10_000);
    },
  };
}

export interface Load {
  stop(): Promise<{ ok: number; failed: number; errors: string[]; served: string[] }>;
}

/**
 * Steady traffic through the load balancer until stopped (at most `maxSeconds`): one request at a time, every
 * 20 ms, each on a fresh connection, recording failures and which release answered.
 */
export function startLoad(url: string, maxSeconds = 300): Load {
  let running = true;
  const stats = { ok: 0, failed: 0, errors: [] as string[], served: [] as string[] };
  const deadline = Date.now() + maxSeconds * 1000;
  const loop = (async () => {
    while (running && Date.now() < deadline) {
      try {
        const res = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(5_000) });
        const body = await res.text();
        if (res.status === 200) {
          stats.ok++;
          if (stats.served[stats.served.length - 1] !== body) stats.served.push(body);
        } else {
          stats.failed++;
          stats.errors.push(`HTTP ${res.status}: ${body.slice(0, 100)}`);
        }
      } catch (err) {
        stats.failed++;
        stats.errors.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return stats;
    },
  };
}
