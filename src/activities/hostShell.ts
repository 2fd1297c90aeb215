// A shell on a host: how a command line reaches it, and who the host is. The run guard, plain commands and their
// result parsing (ssh/remoteRun.ts) are the same for every host; only this differs: an SSH channel (sshShell in
// ssh/pool.ts), or for a `connection: local` host a `sh -c` started by the worker itself (here).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';

export interface ShellOutput {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

export interface HostShell {
  /** Who is at the other end, as the run guard records it: an SSH host key's fingerprint, or `local:<machine>`. */
  readonly identity: string;
  /** Runs one command line (already quoted) in a POSIX shell there and collects its output. */
  run(command: string): Promise<ShellOutput>;
}

/** Gathers a process's output until `ended` says how it ended: an SSH channel's or a child process's. */
export async function collect(out: NodeJS.ReadableStream, err: NodeJS.ReadableStream, ended: Promise<{ code: number | null; signal: string | null }>): Promise<ShellOutput> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  out.on('data', (d: Buffer) => stdout.push(d));
  err.on('data', (d: Buffer) => stderr.push(d));
  const { code, signal } = await ended;
  return { code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
}

let machine: string | undefined;

/**
 * This machine, as the run guard records it for a local host: /etc/machine-id (or the hostname where there is
 * none), hashed with an opsflow-specific prefix, since the machine id itself is meant to stay private. Two
 * machines that share a state directory (OPSFLOW_STATE_DIR on NFS) differ here; the boot id tells restarts apart.
 */
export function localIdentity(): string {
  if (machine === undefined) {
    let id = hostname();
    for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
      try {
        id = readFileSync(file, 'utf8').trim() || id;
        break;
      } catch {
        // Containers often have neither; the next candidate, then the hostname, stands in.
      }
    }
    machine = `local:${createHash('sha256').update(`opsflow\0${id}`).digest('hex').slice(0, 32)}`;
  }
  return machine;
}

/**
 * A login's environment, not the worker's: the worker holds Temporal, Slack and codec secrets in its environment,
 * and a command such as `env` would otherwise print them into the run's history.
 */
function loginEnv(): NodeJS.ProcessEnv {
  const { username, homedir, shell } = userInfo();
  const keep = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'OPSFLOW_STATE_DIR'].filter((k) => process.env[k] !== undefined);
  return { ...Object.fromEntries(keep.map((k) => [k, process.env[k]])), USER: username, LOGNAME: username, HOME: homedir, SHELL: shell ?? '/bin/sh' };
}

export function localShell(): HostShell {
  return {
    identity: localIdentity(),
    run(command) {
      // Its own process group: a Ctrl-C at the worker's terminal must not kill the run guard mid-command.
      const child = spawn('/bin/sh', ['-c', command], { cwd: userInfo().homedir, env: loginEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      return collect(
        child.stdout,
        child.stderr,
        new Promise((resolve, reject) => {
          child.once('error', (err) => reject(new Error(`cannot start /bin/sh on the worker: ${err.message}`)));
          child.once('close', (code, signal) => resolve({ code, signal }));
        }),
      );
    },
  };
}
