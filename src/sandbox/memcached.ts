// memcachedPool's part of the sandbox: two memcached servers (Debian's binary) on 127.0.0.1, the pool's and its
// replacement, and the pool's clients, the demo data app on every web node, which loads its pool file at start
// (so only a restart makes a new pool live) and writes and reads through the pool.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { appPid, appPidFile, ensureDataApp, stopApp } from './apps';
import type { FleetHost } from './fleet';
import { cacheDir, SANDBOX, SANDBOX_FILES } from './layout';
import { DATAAPP_DIR } from './paths';
import { keepDaemon, livePid, portOpen, stopPid, until } from './processes';

const M = SANDBOX.memcached;
const SERVERS = [['the pool\'s', M.old], ['its replacement', M.new]] as const;
export const memcachedServer = (s: { port: number }) => `127.0.0.1:${s.port}`;
const serverPid = (s: { port: number }) => livePid(SANDBOX_FILES.memcachedPid(s.port), 'memcached');

/** The clients' restart: the data app on the node's cache directory (the inventory's `{cache}`). */
const cacheRestart = (host: FleetHost) => ['sh', path.join(DATAAPP_DIR, 'ctl.sh'), cacheDir(host), host.address, String(M.clientPort)];

async function ensureServer(s: { port: number; memoryMb: number }): Promise<void> {
  if (serverPid(s)) return;
  // In the foreground (not -d, whose pid file memcached writes only as `nobody`), kept as a daemon by us.
  keepDaemon(spawn('memcached', ['-l', '127.0.0.1', '-p', String(s.port), '-m', String(s.memoryMb), '-U', '0', '-u', 'nobody'], { detached: true, stdio: 'ignore' }), SANDBOX_FILES.memcachedPid(s.port));
  await until(`memcached on ${memcachedServer(s)}`, () => portOpen('127.0.0.1', s.port));
}

/** Starts what does not run: both servers, and on each web node a client whose pool is the old server (at first). */
export async function ensureMemcached(webNodes: [string, FleetHost][]): Promise<void> {
  for (const [, s] of SERVERS) await ensureServer(s);
  // A pool is no secret: `status` shows it, to whoever asks.
  for (const [, host] of webNodes) ensureDataApp(cacheDir(host), { 'config.json': `${JSON.stringify({ memcached: [memcachedServer(M.old)] })}\n` }, cacheRestart(host), 0o644);
}

function pool(host: FleetHost): string {
  try {
    return (JSON.parse(readFileSync(path.join(cacheDir(host), 'config.json'), 'utf8')) as { memcached: string[] }).memcached.join(', ');
  } catch {
    return 'none';
  }
}

/** The servers' line and the clients' line. */
export function memcachedStatus(webNodes: [string, FleetHost][]): string[] {
  return [
    `  memcached ${SERVERS.map(([what, s]) => `${memcachedServer(s)} (${what}, -m ${s.memoryMb}) ${serverPid(s) ? 'running' : 'stopped'}`).join('; ')}`,
    `  cache    clients :${M.clientPort} (memcachedPool's): ${webNodes.map(([name, h]) => `${name} ${appPid(cacheDir(h)) ? 'running' : 'stopped'} (pool ${pool(h)})`).join('; ')}`,
  ];
}

/** Stops the clients and the servers; returns what it stopped. */
export async function stopMemcached(webNodes: [string, FleetHost][]): Promise<string[]> {
  const stopped: string[] = [];
  for (const [name, host] of webNodes) if (await stopApp(cacheDir(host))) stopped.push(`cache client on ${name}`);
  for (const [, s] of SERVERS) {
    const pid = serverPid(s);
    if (!pid) continue;
    await stopPid(pid);
    stopped.push(`memcached ${memcachedServer(s)}`);
  }
  return stopped;
}

export function memcachedPidFiles(webNodes: [string, FleetHost][]): string[] {
  return [...SERVERS.map(([, s]) => SANDBOX_FILES.memcachedPid(s.port)), ...webNodes.map(([, h]) => appPidFile(cacheDir(h)))];
}
