// The sandbox's daemons, each known by its pid file: started once, found again after a restart of opsflow, and
// stopped by pid, never by name.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export class SandboxError extends Error {}

/**
 * Keeps `child` (spawned `detached`) as a daemon that outlives this command, its pid written to `pidFile` by us:
 * daemons that write their own do so after dropping to a user who cannot write under sandbox/.
 */
export function keepDaemon(child: ChildProcess, pidFile: string): void {
  child.unref();
  mkdirSync(path.dirname(pidFile), { recursive: true, mode: 0o755 });
  writeFileSync(pidFile, `${child.pid}\n`);
}

/** A pid from the file whose process is alive and has `marker` in its command line (so a reused pid is not ours). */
export function livePid(pidFile: string, marker: string): number | undefined {
  const pid = runningPid(pidFile);
  try {
    return pid !== undefined && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid in the file, if that process is running (whatever it is). */
export function runningPid(pidFile: string): number | undefined {
  try {
    // The first line: PostgreSQL's postmaster.pid has more.
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0].trim());
    return Number.isInteger(pid) && pid > 0 && running(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    sock.setTimeout(1000, () => (sock.destroy(), resolve(false)));
    sock.on('connect', () => (sock.destroy(), resolve(true)));
    sock.on('error', () => resolve(false));
  });
}

export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new SandboxError(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL if it is still there after 5 s. */
export async function stopPid(pid: number): Promise<void> {
  process.kill(pid, 'SIGTERM');
  try {
    await until(`process ${pid} to exit`, () => !running(pid), 5_000);
  } catch {
    process.kill(pid, 'SIGKILL');
    await until(`process ${pid} to exit after SIGKILL`, () => !running(pid), 5_000);
  }
}
