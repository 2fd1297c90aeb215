// HAProxy's runtime API: take a server out of rotation (drain, then maintenance) and put it back, and read
// its state. The socket is the worker's own (HAProxy beside the worker) or reached over SSH with socat.
import net from 'node:net';
import type { HostConnection } from '../config/inventory';
import type { SshPool } from './ssh/pool';
import { runPlain } from './ssh/remoteRun';

export interface HaproxyEndpoint {
  socket: string;
  via?: HostConnection;
}

export interface ServerStat {
  backend: string;
  server: string;
  /** Current sessions. */
  sessions: number;
  /** UP, DOWN, MAINT, DRAIN, "UP 1/2"… as HAProxy reports it. */
  status: string;
}

function localCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const conn = net.connect(socket, () => conn.end(`${command}\n`));
    conn.setTimeout(10_000, () => conn.destroy(new Error(`HAProxy socket ${socket} did not answer`)));
    conn.on('data', (d: Buffer) => chunks.push(d));
    conn.on('error', (err) => reject(new Error(`HAProxy socket ${socket}: ${err.message}`)));
    conn.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export async function haproxyCommand(ssh: SshPool, at: HaproxyEndpoint, command: string): Promise<string> {
  if (!at.via) return localCommand(at.socket, command);
  const res = await ssh.shell(at.via, (shell) =>
    runPlain(shell, ['sh', '-c', 'printf "%s\\n" "$1" | socat -t 5 - UNIX-CONNECT:"$2"', 'opsflow', command, at.socket], 15_000),
  );
  if (res.code !== 0) throw new Error(`HAProxy socket ${at.socket} on ${at.via.name}: ${res.stderr.trim() || `exit ${res.code}`}`);
  return res.stdout;
}

/** `show stat` is CSV whose header line names the columns; read them by name, not position. */
export function parseStat(csv: string): ServerStat[] {
  const lines = csv.split('\n').filter((l) => l.trim());
  const header = lines.shift()?.replace(/^# /, '').split(',') ?? [];
  const col = (name: string) => header.indexOf(name);
  return lines
    .map((l) => l.split(','))
    .filter((f) => f[col('svname')] !== 'FRONTEND' && f[col('svname')] !== 'BACKEND')
    .map((f) => ({ backend: f[col('pxname')], server: f[col('svname')], sessions: Number(f[col('scur')]), status: f[col('status')] }));
}

export async function serverStat(ssh: SshPool, at: HaproxyEndpoint, backend: string, server: string): Promise<ServerStat> {
  const stat = parseStat(await haproxyCommand(ssh, at, 'show stat')).find((s) => s.backend === backend && s.server === server);
  if (!stat) throw new Error(`HAProxy has no server ${backend}/${server}`);
  return stat;
}

export async function setServerState(ssh: SshPool, at: HaproxyEndpoint, backend: string, server: string, state: 'ready' | 'drain' | 'maint'): Promise<void> {
  const reply = (await haproxyCommand(ssh, at, `set server ${backend}/${server} state ${state}`)).trim();
  if (reply) throw new Error(`HAProxy refused "set server ${backend}/${server} state ${state}": ${reply}`);
}
