// Runs a program where the inventory says: on the worker's own machine, or on an inventory host over SSH. The
// data tools (pg_dump, pg_restore, psql, rclone) all go through here.
//
// The program is an argv, quoted word by word for the remote shell. Environment values that may be secret (a
// database password, rclone credentials) never go on a command line, where `ps` and logs would show them: a
// local process gets them in its environment, a remote one through its stdin, read by a small sh prelude that
// exports them before it execs the program. Streams are handed over as they are, so a dump or a restore flows
// through without being held in memory.
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { Context } from '@temporalio/activity';
import { quoteArgv } from '../common/shell';
import type { Inventory } from '../config/inventory';
import type { RunOn } from '../config/systems';
import { exec, type SshPool } from './ssh/pool';
import { STATE_DIR_SH } from './ssh/remoteRun';
import { ToolConfigError, ToolOutputTooLarge } from '../common/errors';

export interface ToolSpec {
  argv: string[];
  /** Passed in the program's environment, never on a command line (over SSH: through stdin). */
  env?: Record<string, string>;
  /**
   * Runs the program under an exclusive lock of this name on the machine it runs on (flock), so the retry of an
   * attempt whose worker died waits until the orphaned program has finished instead of running beside it.
   */
  lock?: string;
}

export interface ToolExit {
  code: number | null;
  signal: string | null;
}

export interface ToolProcess {
  /** `worker`, or `environment/host`. */
  where: string;
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<ToolExit>;
  kill(): void;
}

export interface RunOptions {
  input?: string | Buffer | Readable;
  /** Takes stdout as a stream; absent: stdout is collected, up to `stdoutCap` bytes. */
  stdout?: (out: Readable) => Promise<void>;
  stdoutCap?: number;
  onStderrLine?: (line: string) => void;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ToolResult extends ToolExit {
  stdout: string;
  /** The last 16 KiB. */
  stderr: string;
  timedOut: boolean;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STDERR_TAIL = 16 * 1024;

// $1: 1 when NAME=value lines, ended by an empty line, come first on stdin; $2: a lock name or "-"; then the argv.
// The locks live in the machine's own state directory (not the home, which hosts may share over NFS). The program
// holds its lock through an inherited descriptor and replaces the shell: killing the process we started kills the
// program itself (flock's own process would leave it running, orphaned, with the lock).
const PRELUDE = `e=$1 l=$2; shift 2
if [ "$e" = 1 ]; then while IFS= read -r kv && [ -n "$kv" ]; do export "$kv" || exit 125; done; fi
if [ "$l" != - ]; then
  ${STATE_DIR_SH}
  d="$base/locks"
  { [ -d "$d" ] || mkdir -p "$d"; } && command exec 9>>"$d/$l.lock" && flock 9 && exec "$@"
  exit 125
fi
exec "$@"`;

function checkEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) {
    // A newline would end the value early in the prelude; the names are ours, the values may come from the inventory.
    if (!ENV_NAME.test(k) || /[\n\0]/.test(v)) {
      throw new ToolConfigError(`environment variable ${k} cannot be passed to a tool (bad name, or a newline in its value)`);
    }
  }
}

/** Sends a heartbeat with fresh details every `ms` while the activity works. */
export function heartbeatEvery(ms: number, details: () => unknown): () => void {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), ms);
  return () => clearInterval(timer);
}

export class Tools {
  constructor(private readonly deps: { inventory: Inventory; ssh: SshPool }) {}

  /** Starts the program; its streams are the caller's to drive. */
  async start(where: RunOn | undefined, spec: ToolSpec): Promise<ToolProcess> {
    checkEnv(spec.env ?? {});
    return where ? this.startRemote(where, spec) : this.startLocal(spec);
  }

  private startLocal(spec: ToolSpec): ToolProcess {
    const argv = spec.lock ? ['sh', '-c', PRELUDE, 'opsflow', '0', spec.lock, ...spec.argv] : spec.argv;
    const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...spec.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<ToolExit>((resolve) => {
      child.once('error', (err) => {
        child.stderr.push(`cannot run ${argv[0]}: ${err.message}\n`);
        resolve({ code: 127, signal: null });
      });
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    // A program that exits without reading all its input must not crash the worker with EPIPE.
    child.stdin.on('error', () => undefined);
    return { where: 'worker', stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited, kill: () => child.kill('SIGTERM') };
  }

  private startRemote(where: RunOn, spec: ToolSpec): Promise<ToolProcess> {
    const conn = this.deps.inventory.connection(where.environment, where.host);
    const env = Object.entries(spec.env ?? {});
    const command = env.length || spec.lock ? quoteArgv(['sh', '-c', PRELUDE, 'opsflow', env.length ? '1' : '0', spec.lock ?? '-', ...spec.argv]) : quoteArgv(spec.argv);
    // The channel's slot in the pool is held until the program ends.
    return new Promise<ToolProcess>((resolve, reject) => {
      let started = false;
      this.deps.ssh
        .with(conn, async (client) => {
          const channel = await exec(client, command);
          let status: ToolExit = { code: null, signal: null };
          channel.on('exit', (code: number | null, signal?: string) => {
            status = { code: code ?? null, signal: signal ?? null };
          });
          const exited = new Promise<ToolExit>((done) => channel.once('close', () => done(status)));
          channel.on('error', () => undefined);
          if (env.length) channel.write(`${env.map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`);
          started = true;
          resolve({
            where: `${where.environment}/${where.host}`,
            stdin: channel,
            stdout: channel,
            stderr: channel.stderr,
            exited,
            kill: () => {
              // Not every sshd honours signal requests; closing the channel ends the program too (EOF, SIGPIPE).
              channel.signal('TERM');
              channel.close();
            },
          });
          await exited;
        })
        .catch((err) => {
          if (!started) reject(err);
        });
    });
  }

  /** Runs the program to its end, feeding `input`, with a timeout and the activity's cancellation. */
  async run(where: RunOn | undefined, spec: ToolSpec, opts: RunOptions): Promise<ToolResult> {
    const proc = await this.start(where, spec);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill();
    }, opts.timeoutMs);
    const onAbort = () => proc.kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let stderr = '';
    let partial = '';
    proc.stderr.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      stderr = (stderr + text).slice(-STDERR_TAIL);
      if (!opts.onStderrLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) opts.onStderrLine(line);
    });
    const chunks: Buffer[] = [];
    let size = 0;
    const cap = opts.stdoutCap ?? 16 * 1024 * 1024;
    const consumed = opts.stdout
      ? opts.stdout(proc.stdout)
      : new Promise<void>((resolve) => {
          proc.stdout.on('data', (d: Buffer) => {
            size += d.length;
            if (size <= cap) chunks.push(d);
          });
          proc.stdout.once('end', resolve);
          proc.stdout.once('close', resolve);
        });
    try {
      if (opts.input === undefined) proc.stdin.end();
      else if (typeof opts.input === 'string' || Buffer.isBuffer(opts.input)) proc.stdin.end(opts.input);
      else {
        opts.input.on('error', () => proc.kill());
        opts.input.pipe(proc.stdin);
      }
      const [exit] = await Promise.all([proc.exited, consumed]);
      if (partial && opts.onStderrLine) opts.onStderrLine(partial);
      if (size > cap) throw new ToolOutputTooLarge(`${spec.argv[0]} on ${proc.where} printed more than ${cap} bytes`);
      return { ...exit, stdout: Buffer.concat(chunks).toString('utf8'), stderr, timedOut };
    } catch (err) {
      proc.kill();
      throw err;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}
