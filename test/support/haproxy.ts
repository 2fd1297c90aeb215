// A real HAProxy (Debian's) on loopback in front of the test service's nodes, with its runtime API socket; the
// configuration and the admin commands are the sandbox's (src/sandbox/haproxy.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { backendServers, haproxyConfig, type HaproxyServer } from '../../src/sandbox/haproxy';
import { freePort, waitFor } from './harness';

export interface Haproxy {
  url: string;
  socket: string;
  /** Each server of the backend and its state (`UP` is in rotation; `MAINT`, `DRAIN` not), without HAProxy's check count ("UP 1/2"). */
  servers(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startHaproxy(backend: string, servers: HaproxyServer[]): Promise<Haproxy> {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-haproxy-'));
  // Balancer hosts reach the socket as the fleet's SSH user.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const socket = path.join(dir, 'admin.sock');
  writeFileSync(path.join(dir, 'haproxy.cfg'), haproxyConfig({ backend, servers, port, socket }));
  const proc: ChildProcess = spawn('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(() => existsSync(socket) || proc.exitCode !== null, 'HAProxy to start', 10_000);
  if (proc.exitCode !== null) throw new Error(`haproxy exited ${proc.exitCode}: ${stderr}`);
  return {
    url: `http://127.0.0.1:${port}/`,
    socket,
    servers: () => backendServers(socket, backend),
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
