// The file store sync: `rclone sync` from production's file store to the standby's, then `rclone check` over both,
// run where the receiving infrastructure says (its `rcloneOn` host over SSH, else the worker).
//
// The remotes come from the system's rclone config file, handed to rclone as RCLONE_CONFIG_<REMOTE>_<KEY>
// environment variables (through stdin over SSH, like every secret), so no config file with credentials is left
// on a host. An SFTP remote must name a known_hosts_file: rclone would otherwise accept any host key.
// Both commands hold a lock named after the destination on the machine they run on, so the retry of an attempt
// whose worker died waits for the orphaned rclone instead of running beside it. A cancelled command stops rclone
// before it reports itself cancelled; the files a sync left unfinished are removed by its undo, removeCutShort.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { SystemConfig } from '../config/systems';
import { assertReceiver, infrastructureOf, rcloneWhere, whereName, type DataDeps } from './dataSync';
import { HostKeyVerifier } from './ssh/hostKeys';
import type { SshPool } from './ssh/pool';
import { presentedHostKey } from './ssh/probe';
import { heartbeatEvery, Tools } from './tool';
import { HostKeyRejected, Misconfigured, RcloneFailed, RcloneInterrupted } from '../common/errors';

export interface RcloneStats {
  bytes: number;
  totalBytes: number;
  transfers: number;
  totalTransfers: number;
  checks: number;
  deletes: number;
  errors: number;
  elapsedSeconds: number;
}

export interface SyncFilesResult extends RcloneStats {
  from: string;
  to: string;
  runsOn: string;
}

export type DifferenceKind = 'missing on the standby' | 'only on the standby' | 'differs' | 'unreadable';

export interface CheckFilesResult {
  from: string;
  to: string;
  runsOn: string;
  /** Files found identical on both sides. */
  same: number;
  differences: number;
  /** The first `cap` differing paths. */
  paths: { path: string; kind: DifferenceKind }[];
}

const KINDS: Record<string, DifferenceKind> = { '-': 'missing on the standby', '+': 'only on the standby', '*': 'differs', '!': 'unreadable' };

// rclone's exit codes that no retry changes: usage error, directory not found, fatal error (rclone docs).
const FINAL_EXIT = new Set([1, 3, 7]);

const EMPTY_STATS: RcloneStats = { bytes: 0, totalBytes: 0, transfers: 0, totalTransfers: 0, checks: 0, deletes: 0, errors: 0, elapsedSeconds: 0 };

/** The config file's remotes as RCLONE_CONFIG_* variables; refuses what would be unsafe or cannot be passed. */
export function rcloneEnv(file: string | undefined): Record<string, string> {
  if (!file) return {};
  const bad = (message: string) => new Misconfigured(`rclone config ${file}: ${message}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw bad(`cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (/^#\s*Encrypted rclone configuration/m.test(text)) throw bad('an encrypted config cannot be handed to rclone as variables: keep secrets in a file readable by the worker only');
  const env: Record<string, string> = {};
  const sections: Record<string, Record<string, string>> = {};
  let section: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      if (!/^[A-Za-z0-9_]+$/.test(section)) throw bad(`remote "${section}": use letters, digits and "_" only (the name becomes part of an environment variable)`);
      sections[section] = {};
      continue;
    }
    const kv = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (!kv || !section) throw bad(`cannot read the line "${line.slice(0, 40)}"`);
    sections[section][kv[1]] = kv[2];
  }
  for (const [remote, keys] of Object.entries(sections)) {
    if (keys.type === 'sftp' && !keys.known_hosts_file) throw bad(`SFTP remote "${remote}" has no known_hosts_file: rclone would accept any host key`);
    for (const [key, value] of Object.entries(keys)) env[`RCLONE_CONFIG_${remote}_${key}`.toUpperCase()] = value;
  }
  return env;
}

/**
 * What opsflow's own host key check says of each SFTP remote, for a refusal: rclone names no fingerprint. Read from
 * the worker, so a remote that only the rclone host reaches goes unnamed.
 */
async function sftpKeyVerdicts(env: Record<string, string>): Promise<string[]> {
  const verdicts: string[] = [];
  for (const [k, type] of Object.entries(env)) {
    const remote = /^RCLONE_CONFIG_(.+)_TYPE$/.exec(k)?.[1];
    if (!remote || type !== 'sftp') continue;
    const get = (key: string) => env[`RCLONE_CONFIG_${remote}_${key}`];
    const address = get('HOST');
    const port = Number(get('PORT') ?? 22);
    const key = address && (await presentedHostKey(address, port));
    if (!key) continue;
    const verdict = new HostKeyVerifier(get('KNOWN_HOSTS_FILE')).verify({ name: `SFTP remote ${remote.toLowerCase()}`, address, port }, key);
    if (!verdict.ok) verdicts.push(verdict.reason);
  }
  return verdicts;
}

interface LogEntry {
  level?: string;
  msg?: string;
  object?: string;
  stats?: Record<string, unknown>;
}

/** A stderr line handler that hands on rclone's JSON log entries (--use-json-log) and skips anything else. */
function logEntries(each: (entry: LogEntry) => void): (line: string) => void {
  return (line) => {
    if (!line.startsWith('{')) return;
    let entry: LogEntry;
    try {
      entry = JSON.parse(line) as LogEntry;
    } catch {
      return; // Not one of rclone's JSON lines.
    }
    each(entry);
  };
}

function statsOf(s: Record<string, unknown>): RcloneStats {
  const n = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : 0);
  return { bytes: n('bytes'), totalBytes: n('totalBytes'), transfers: n('transfers'), totalTransfers: n('totalTransfers'), checks: n('checks'), deletes: n('deletes'), errors: n('errors'), elapsedSeconds: Math.round(n('elapsedTime') * 10) / 10 };
}

export function createRcloneActivities(deps: DataDeps & { ssh: SshPool }) {
  const { inventory } = deps;
  const tools = new Tools(deps);

  function ends(system: string, from: string, to: string) {
    const sys: SystemConfig = inventory.system(system);
    const src = infrastructureOf(sys, system, from);
    const dst = infrastructureOf(sys, system, to);
    if (!src.files || !dst.files) throw new Misconfigured(`${system}: both infrastructures need a files path`);
    const where = rcloneWhere(dst);
    return {
      src: src.files,
      dst: dst.files,
      where,
      env: rcloneEnv(sys.rcloneConfig ? inventory.filePath(sys.rcloneConfig) : undefined),
      lock: `rclone-${createHash('sha256').update(dst.files).digest('hex').slice(0, 16)}`,
    };
  }

  /** Runs one rclone command with JSON logs; stats go into heartbeats, error lines are kept for the failure. */
  async function rclone(e: ReturnType<typeof ends>, args: string[], onStdout?: (line: string) => void) {
    const ctx = Context.current();
    let stats = EMPTY_STATS;
    const errors: string[] = [];
    const stop = heartbeatEvery(5_000, () => stats);
    let partial = '';
    try {
      const res = await tools.run(
        e.where,
        { argv: ['rclone', ...args, '--config', '', '--use-json-log', '--stats', '2s', '--stats-log-level', 'NOTICE', '--log-level', 'NOTICE', '--', e.src, e.dst], env: e.env, lock: e.lock },
        {
          timeoutMs: ctx.info.startToCloseTimeoutMs,
          signal: ctx.cancellationSignal,
          onStderrLine: logEntries((entry) => {
            if (entry.stats) stats = statsOf(entry.stats);
            else if (entry.level === 'error' && errors.length < 20) errors.push(`${entry.object ? `${entry.object}: ` : ''}${entry.msg ?? ''}`.trim());
          }),
          stdout: onStdout
            ? (out) =>
                new Promise<void>((resolve) => {
                  out.on('data', (d: Buffer) => {
                    const lines = (partial + d.toString('utf8')).split('\n');
                    partial = lines.pop() ?? '';
                    lines.forEach(onStdout);
                  });
                  out.once('end', resolve);
                  out.once('close', resolve);
                })
            : undefined,
        },
      );
      if (partial && onStdout) onStdout(partial);
      return { res, stats, errors };
    } finally {
      stop();
    }
  }

  /** A cancelled command, rclone stopped, reports itself cancelled: the run waiting for it goes on to its undo. */
  const stopped = (what: string, e: ReturnType<typeof ends>) => new CancelledFailure(`${what} ${e.src} → ${e.dst} on ${whereName(e.where)} stopped`);

  const failure = async (what: string, e: ReturnType<typeof ends>, run: Awaited<ReturnType<typeof rclone>>) => {
    const detail = run.errors.join('; ') || run.res.stderr.trim().split('\n').slice(-5).join(' / ');
    // An SFTP host key that known_hosts does not vouch for is refused, as everywhere in opsflow: no retry.
    const hostKey = /knownhosts: key (is unknown|mismatch)|host key mismatch/i.test(detail);
    const message = `${what} ${e.src} → ${e.dst} on ${whereName(e.where)} failed (${run.res.timedOut ? 'timed out' : run.res.code === null ? `killed by ${run.res.signal}` : `exit ${run.res.code}`}): ${detail}`;
    if (hostKey) return new HostKeyRejected([message, ...(await sftpKeyVerdicts(e.env))].join('; '));
    return run.res.code !== null && FINAL_EXIT.has(run.res.code) ? new RcloneFailed(message) : new RcloneInterrupted(message);
  };

  return {
    /** Makes the standby's file store identical to production's: copies what is new or changed, deletes the rest. */
    async syncFiles(input: { system: string; from: string; to: string }): Promise<SyncFilesResult> {
      await assertReceiver(deps, input.system, input.to);
      const e = ends(input.system, input.from, input.to);
      // A file replaced while the sync runs (a user's upload) is copied as rclone finds it instead of failing the
      // whole sync; the check that follows compares both trees again and reports it.
      const run = await rclone(e, ['sync', '--checkers', '8', '--transfers', '4', '--local-no-check-updated']);
      if (Context.current().cancellationSignal.aborted) throw stopped('rclone sync', e);
      if (run.res.code !== 0) throw await failure('rclone sync', e, run);
      return { ...run.stats, from: e.src, to: e.dst, runsOn: whereName(e.where) };
    },

    /**
     * The undo of a sync cut short (cancelled, timed out, its worker gone): waits for any rclone still writing into
     * the destination to stop (it holds the lock), then removes the files it left unfinished. rclone writes a file
     * in place and gives it production's modification time once it is whole, so the files changed since the sync
     * started are the ones it was writing: afterwards every file on the standby is whole, its old version or
     * production's, or absent until the next sync. Returns the paths removed.
     */
    async removeCutShort(input: { system: string; from: string; to: string; since: number }): Promise<string[]> {
      await assertReceiver(deps, input.system, input.to);
      const e = ends(input.system, input.from, input.to);
      const removed: string[] = [];
      const stop = heartbeatEvery(5_000, () => ({ removed: removed.length }));
      try {
        // The window opens a second early, for the clock's grain; it is measured here, where rclone's times are read.
        const maxAge = `${Math.ceil((Date.now() - input.since) / 1000) + 1}s`;
        const res = await tools.run(
          e.where,
          { argv: ['rclone', 'delete', '--config', '', '--max-age', maxAge, '--use-json-log', '--log-level', 'INFO', '--', e.dst], env: e.env, lock: e.lock },
          {
            timeoutMs: Context.current().info.startToCloseTimeoutMs,
            signal: Context.current().cancellationSignal,
            onStderrLine: logEntries((entry) => {
              if (entry.msg === 'Deleted' && entry.object) removed.push(entry.object);
            }),
          },
        );
        if (res.code !== 0) throw new RcloneInterrupted(`removing what rclone left unfinished in ${e.dst} on ${whereName(e.where)} failed (exit ${res.code ?? res.signal}): ${res.stderr.trim().split('\n').slice(-3).join(' / ')}`);
        return removed;
      } finally {
        stop();
      }
    },

    /** Compares both trees (sizes and hashes); lists the first `cap` paths that differ. */
    async checkFiles(input: { system: string; from: string; to: string; cap: number }): Promise<CheckFilesResult> {
      const e = ends(input.system, input.from, input.to);
      const result: CheckFilesResult = { from: e.src, to: e.dst, runsOn: whereName(e.where), same: 0, differences: 0, paths: [] };
      const run = await rclone(e, ['check', '--checkers', '8', '--combined', '-'], (line) => {
        const kind = KINDS[line[0]];
        if (line[0] === '=') result.same++;
        else if (kind && line[1] === ' ') {
          result.differences++;
          if (result.paths.length < input.cap) result.paths.push({ path: line.slice(2), kind });
        }
      });
      if (Context.current().cancellationSignal.aborted) throw stopped('rclone check', e);
      // Exit 1 is how rclone check says "differences found"; anything else means it could not compare.
      if (run.res.code !== 0 && !(run.res.code === 1 && result.differences > 0)) throw await failure('rclone check', e, run);
      return result;
    },
  };
}
