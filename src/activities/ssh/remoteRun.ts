// Runs one command on a host at most once per step, even when the worker dies and the activity is retried.
//
// The command starts detached (its own session, output to files) under a state directory named by the run and
// step. A second attempt finds that directory and, instead of starting the command again, waits for the first
// one and returns its recorded exit status and output. If the host lost the first attempt without a recorded
// status (it rebooted, say), the outcome is reported as unknown, for an operator to decide.
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import type { Client } from 'ssh2';
import { programArgv, type RemoteCommand } from '../../common/command';
import { quoteArgv } from '../../common/shell';
import { exec } from './pool';

export interface RemoteOutcome {
  /** `started`: ran now; `resumed`: an earlier attempt ran it and this one collected the result. */
  attempt: 'started' | 'resumed';
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export class OutcomeUnknownError extends Error {
  constructor(host: string) {
    super(`an earlier attempt of this step on ${host} was interrupted (the host restarted or the process was killed) and its outcome is unknown; check the host, then retry or skip`);
    this.name = 'OutcomeUnknownError';
  }
}

/** A step's identity on the host: the same for every retry of one attempt, new for an operator's retry. */
export function stepKey(workflowId: string, runId: string, step: string): string {
  return createHash('sha256').update(`${workflowId}\0${runId}\0${step}`).digest('hex').slice(0, 32);
}

const STATE = '${OPSFLOW_STATE_DIR:-$HOME/.opsflow}/runs';

// $1 key, $2 output cap in bytes, $3 working directory (may be empty), then the argv to run.
//
// Every process the guard starts costs a fork and an exec on the host, several ms on a small VM and the
// larger part of a short command's time, so it uses shell builtins where one does the job: `read` instead of
// `$(cat)`, `[ -d ]` before `mkdir -p`, and no `wc`: it sends at most cap+1 bytes of each stream and the
// worker tells truncation from getting more than cap. What stays is what must be a process: mkdir (the
// atomic claim), setsid (the command's own session, so it can be killed as a group), mv (rc appears
// atomically for a resuming attempt), tail of a non-empty stream, and the background prune.
const GUARD = `b="${STATE}"; r="$b/$1"; cap=$2; cwd=$3; shift 3
[ -d "$b" ] || mkdir -p "$b" || exit 125
if mkdir "$r" 2>/dev/null; then
  s=started; echo $$ >"$r/wpid"
  if cd "\${cwd:-.}" 2>"$r/err"; then
    setsid "$@" </dev/null >"$r/out" 2>"$r/err" &
    echo $! >"$r/pid"; wait $!; echo $? >"$r/rc.t"
  else
    : >"$r/out"; echo 126 >"$r/rc.t"
  fi
  mv "$r/rc.t" "$r/rc"
  (find "$b" -mindepth 1 -maxdepth 1 -mtime +14 -exec rm -rf {} +) >/dev/null 2>&1 &
else
  s=resumed; n=0
  while [ ! -e "$r/rc" ]; do
    w=$(cat "$r/wpid" 2>/dev/null)
    if [ -n "$w" ] && [ -d "/proc/$w" ]; then sleep 0.2
    elif [ $n -lt 20 ]; then n=$((n+1)); sleep 0.1
    else echo "opsflow:lost"; exit 0; fi
  done
fi
read -r rc <"$r/rc"
echo "opsflow:$s $rc"
if [ -s "$r/out" ]; then tail -c $((cap + 1)) "$r/out"; fi
if [ -s "$r/err" ]; then tail -c $((cap + 1)) "$r/err" >&2; fi`;

const KILL = `p=$(cat "${STATE}/$1/pid" 2>/dev/null) && kill -s "$2" -- "-$p" 2>/dev/null; exit 0`;

export function guardedCommand(key: string, cmd: RemoteCommand, capBytes: number): string {
  return quoteArgv(['sh', '-c', GUARD, 'opsflow', key, String(capBytes), cmd.cwd ?? '', ...programArgv(cmd)]);
}

function killCommand(key: string, signal: 'TERM' | 'KILL', sudo: boolean): string {
  return quoteArgv([...(sudo ? ['sudo', '-n', '--'] : []), 'sh', '-c', KILL, 'opsflow', key, signal]);
}

const SIGNALS = Object.fromEntries(Object.entries(constants.signals).map(([name, n]) => [n, name]));

async function collect(client: Client, command: string): Promise<{ code: number | null; signal: string | null; stdout: Buffer; stderr: Buffer }> {
  const channel = await exec(client, command);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  channel.on('data', (d: Buffer) => out.push(d));
  channel.stderr.on('data', (d: Buffer) => err.push(d));
  return new Promise((resolve) => {
    channel.on('close', (code: number | null, signal?: string) => resolve({ code: code ?? null, signal: signal ?? null, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
  });
}

/** The guard sends up to cap+1 bytes of a stream: more than cap means the output was longer, keep its tail. */
function capped(buf: Buffer, cap: number): { text: string; truncated: boolean } {
  return buf.length > cap ? { text: buf.subarray(buf.length - cap).toString('utf8'), truncated: true } : { text: buf.toString('utf8'), truncated: false };
}

export interface RunOptions {
  host: string;
  key: string;
  timeoutMs: number;
  capBytes: number;
  signal?: AbortSignal;
}

/**
 * Runs (or resumes) the guarded command. On timeout or abort the remote process group gets TERM, then KILL
 * after a grace period, and the result reports it; the caller decides what an abort means.
 */
export async function runGuarded(client: Client, cmd: RemoteCommand, opts: RunOptions): Promise<RemoteOutcome> {
  let timedOut = false;
  const stop = async () => {
    await collect(client, killCommand(opts.key, 'TERM', !!cmd.sudo)).catch(() => undefined);
    const grace = setTimeout(() => void collect(client, killCommand(opts.key, 'KILL', !!cmd.sudo)).catch(() => undefined), 5_000);
    grace.unref();
  };
  const timer = setTimeout(() => {
    timedOut = true;
    void stop();
  }, opts.timeoutMs);
  const onAbort = () => void stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await collect(client, guardedCommand(opts.key, cmd, opts.capBytes));
    const nl = res.stdout.indexOf(0x0a);
    const header = res.stdout.subarray(0, nl < 0 ? res.stdout.length : nl).toString('utf8').split(' ');
    if (header[0] === 'opsflow:lost') throw new OutcomeUnknownError(opts.host);
    if (header[0] !== 'opsflow:started' && header[0] !== 'opsflow:resumed') {
      const text = res.stdout.toString('utf8');
      throw new Error(`the remote guard on ${opts.host} failed (exit ${res.code}): ${res.stderr.toString('utf8').slice(-500) || text.slice(0, 500)}`);
    }
    const rc = Number(header[1]);
    const killedBy = rc > 128 && rc < 128 + 65 ? SIGNALS[rc - 128] ?? null : null;
    const out = capped(nl < 0 ? Buffer.alloc(0) : res.stdout.subarray(nl + 1), opts.capBytes);
    const err = capped(res.stderr, opts.capBytes);
    return {
      attempt: header[0] === 'opsflow:started' ? 'started' : 'resumed',
      exitCode: killedBy ? null : rc,
      signal: killedBy,
      timedOut,
      stdout: out.text,
      stderr: err.text,
      truncated: out.truncated || err.truncated,
    };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

export interface PlainResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a short, idempotent command attached (no run guard): reads, checks and check-then-act scripts whose
 * second run is harmless. On timeout the channel is closed and a retryable error thrown.
 */
export async function runPlain(client: Client, argv: string[], timeoutMs: number): Promise<PlainResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`\`${argv[0]}\` did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const res = await Promise.race([collect(client, quoteArgv(argv)), timeout]);
    return { code: res.code, stdout: res.stdout.toString('utf8'), stderr: res.stderr.toString('utf8') };
  } finally {
    clearTimeout(timer);
  }
}
