// Runs one command on a host at most once per step, even when the worker dies and the activity is retried.
//
// The command starts detached (its own session, output to files) under a state directory named by the run,
// the step and the host. A second attempt finds that directory and, instead of starting the command again,
// waits for the first one and returns its recorded exit status and output. If the host lost the first attempt
// without a recorded status (the process was killed), the outcome is reported as unknown, for an operator to
// decide.
//
// The state records who ran the command: the fingerprint of the host key the connection verified (for a local
// host, the worker's machine: see hostShell.ts) and the host's boot id. Home directories are often shared between hosts (NFS), and several sshd may run on one
// machine; a result is collected only on the host that recorded it, in the boot that recorded it. Anything
// else is a HostIdentityMismatch error, never a borrowed success.
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import { programArgv, type RemoteCommand } from '../../common/command';
import { HostIdentityMismatch } from '../../common/errors';
import { quoteArgv } from '../../common/shell';
import type { HostShell } from '../hostShell';

/** Which host ran a command: the SHA256 fingerprint of its SSH host key (`local:…` for a local host) and its boot id. */
export interface RanOn {
  hostKey: string;
  bootId: string;
}

export interface RemoteOutcome {
  /** `started`: ran now; `resumed`: an earlier attempt on this same host ran it and this one collected the result. */
  attempt: 'started' | 'resumed';
  ranOn: RanOn;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export class OutcomeUnknownError extends Error {
  constructor(host: string) {
    super(`an earlier attempt of this step on ${host} was interrupted (the process was killed) and its outcome is unknown; check the host, then retry or skip`);
    this.name = 'OutcomeUnknownError';
  }
}

/** The state of this step on this host was recorded by another host, or by this host before it restarted. */
export function hostIdentityMismatch(host: string, recorded: RanOn, current: RanOn): InstanceType<typeof HostIdentityMismatch> {
  const cause =
    recorded.hostKey === current.hostKey
      ? 'the host restarted since that attempt, or another machine with the same host key shares the state directory'
      : 'another host shares its state directory (an NFS home, a copied disk) or the host key changed';
  return new HostIdentityMismatch(
    `the recorded attempt of this step on ${host} was made by host key ${recorded.hostKey} in boot ${recorded.bootId}, but ${host} is host key ${current.hostKey} in boot ${current.bootId}: ${cause}; ` +
      "its result is not collected as this host's; check the host, then retry or skip",
  );
}

/** A step's identity on one host: the same for every retry of one attempt, new for an operator's retry. */
export function stepKey(workflowId: string, runId: string, step: string, host: string): string {
  return createHash('sha256').update(`${workflowId}\0${runId}\0${step}\0${host}`).digest('hex').slice(0, 32);
}

/**
 * Sets $base to the state directory, on local disk unless OPSFLOW_STATE_DIR says otherwise: /var/tmp survives
 * the worker's and the host's restarts (a run's state must outlive both), unlike $XDG_RUNTIME_DIR, which is
 * removed at logout. /var/tmp is shared by all users, so a directory some other user made for us is refused.
 */
export const STATE_DIR_SH = `base="\${OPSFLOW_STATE_DIR:-/var/tmp/opsflow-\${USER:-$(id -un)}}"
[ -d "$base" ] || mkdir -p -m 700 "$base" || exit 125
if [ -L "$base" ] || [ ! -O "$base" ]; then echo "opsflow: $base is a symlink or belongs to another user: refusing to keep state there" >&2; exit 125; fi`;

// $1 key, $2 output cap in bytes, $3 working directory (may be empty), $4 the verified host key's fingerprint,
// $5 the boot id file, then the argv to run.
//
// Every process the guard starts costs a fork and an exec on the host, several ms on a small VM and the
// larger part of a short command's time, so it uses shell builtins where one does the job: `read` instead of
// `$(cat)`, `[ -d ]` before `mkdir -p`, and no `wc`: it sends at most cap+1 bytes of each stream and the
// worker tells truncation from getting more than cap. What stays is what must be a process: mkdir (the
// atomic claim), setsid (the command's own session, so it can be killed as a group), mv (rc appears
// atomically for a resuming attempt), tail of a non-empty stream, and the background prune. The prune lists the
// whole directory, one entry per command of the last 14 days (tens of thousands on a busy host, more where hosts
// share one state directory), so it runs at most once an hour per directory (the `.pruned` stamp), not after
// every command.
const GUARD = `${STATE_DIR_SH}
b="$base/runs"; r="$b/$1"; cap=$2; cwd=$3; fp=$4
{ read -r boot <"$5"; } 2>/dev/null && [ -n "$boot" ] || { echo "opsflow: cannot read the boot id from $5" >&2; exit 125; }
shift 5
[ -d "$b" ] || mkdir -p "$b" || exit 125
if mkdir "$r" 2>/dev/null; then
  s=started; echo "$fp $boot" >"$r/id"; echo $$ >"$r/wpid"
  if cd "\${cwd:-.}" 2>"$r/err"; then
    setsid "$@" </dev/null >"$r/out" 2>"$r/err" &
    echo $! >"$r/pid"; wait $!; echo $? >"$r/rc.t"
  else
    : >"$r/out"; echo 126 >"$r/rc.t"
  fi
  mv "$r/rc.t" "$r/rc"
  (find "$b/.pruned" -mmin -60 2>/dev/null | grep -q . || { : >"$b/.pruned"; find "$b" -mindepth 1 -maxdepth 1 -name '[!.]*' -mtime +14 -exec rm -rf {} +; }) >/dev/null 2>&1 &
else
  s=resumed; n=0
  while [ ! -s "$r/id" ]; do
    if [ $n -lt 20 ]; then n=$((n+1)); sleep 0.1; else echo "opsflow:lost"; exit 0; fi
  done
  read -r rfp rboot <"$r/id"
  if [ "$rfp" != "$fp" ] || [ "$rboot" != "$boot" ]; then echo "opsflow:foreign $rfp $rboot $boot"; exit 0; fi
  n=0
  while [ ! -e "$r/rc" ]; do
    w=$(cat "$r/wpid" 2>/dev/null)
    if [ -n "$w" ] && [ -d "/proc/$w" ]; then sleep 0.2
    elif [ $n -lt 20 ]; then n=$((n+1)); sleep 0.1
    else echo "opsflow:lost"; exit 0; fi
  done
fi
read -r rc <"$r/rc"
echo "opsflow:$s $rc $boot"
if [ -s "$r/out" ]; then tail -c $((cap + 1)) "$r/out"; fi
if [ -s "$r/err" ]; then tail -c $((cap + 1)) "$r/err" >&2; fi`;

// $1 key, $2 signal, $3 "sudo" for a command run under sudo. The state directory is the SSH user's, as the guard
// ran as that user; only the kill needs sudo.
const KILL = `${STATE_DIR_SH}
p=$(cat "$base/runs/$1/pid" 2>/dev/null) || exit 0
if [ "$3" = sudo ]; then sudo -n kill -s "$2" -- "-$p"; else kill -s "$2" -- "-$p"; fi 2>/dev/null; exit 0`;

export function guardedCommand(key: string, cmd: RemoteCommand, capBytes: number, hostKey: string, bootIdFile: string): string {
  return quoteArgv(['sh', '-c', GUARD, 'opsflow', key, String(capBytes), cmd.cwd ?? '', hostKey, bootIdFile, ...programArgv(cmd)]);
}

function killCommand(key: string, signal: 'TERM' | 'KILL', sudo: boolean): string {
  return quoteArgv(['sh', '-c', KILL, 'opsflow', key, signal, sudo ? 'sudo' : '']);
}

const SIGNALS = Object.fromEntries(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** The guard sends up to cap+1 bytes of a stream: more than cap means the output was longer, keep its tail. */
function capped(buf: Buffer, cap: number): { text: string; truncated: boolean } {
  return buf.length > cap ? { text: buf.subarray(buf.length - cap).toString('utf8'), truncated: true } : { text: buf.toString('utf8'), truncated: false };
}

export interface RunOptions {
  host: string;
  /** stepKey() of the run, the step and this host. */
  key: string;
  bootIdFile: string;
  timeoutMs: number;
  capBytes: number;
  signal?: AbortSignal;
}

/**
 * Runs (or resumes) the guarded command. On timeout or abort the remote process group gets TERM, then KILL
 * after a grace period, and the result reports it; the caller decides what an abort means.
 */
export async function runGuarded(shell: HostShell, cmd: RemoteCommand, opts: RunOptions): Promise<RemoteOutcome> {
  let timedOut = false;
  const stop = async () => {
    await shell.run(killCommand(opts.key, 'TERM', !!cmd.sudo)).catch(() => undefined);
    const grace = setTimeout(() => void shell.run(killCommand(opts.key, 'KILL', !!cmd.sudo)).catch(() => undefined), 5_000);
    grace.unref();
  };
  const timer = setTimeout(() => {
    timedOut = true;
    void stop();
  }, opts.timeoutMs);
  const onAbort = () => void stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const hostKey = shell.identity;
    const res = await shell.run(guardedCommand(opts.key, cmd, opts.capBytes, hostKey, opts.bootIdFile));
    const nl = res.stdout.indexOf(0x0a);
    const header = res.stdout.subarray(0, nl < 0 ? res.stdout.length : nl).toString('utf8').split(' ');
    if (header[0] === 'opsflow:lost') throw new OutcomeUnknownError(opts.host);
    if (header[0] === 'opsflow:foreign') throw hostIdentityMismatch(opts.host, { hostKey: header[1], bootId: header[2] }, { hostKey, bootId: header[3] });
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
      ranOn: { hostKey, bootId: header[2] },
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
export async function runPlain(shell: HostShell, argv: string[], timeoutMs: number): Promise<PlainResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`\`${argv[0]}\` did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const res = await Promise.race([shell.run(quoteArgv(argv)), timeout]);
    return { code: res.code, stdout: res.stdout.toString('utf8'), stderr: res.stderr.toString('utf8') };
  } finally {
    clearTimeout(timer);
  }
}
