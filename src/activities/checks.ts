// Service checks for before and after a host changes: an HTTP answer, an open TCP port, a command's exit code,
// and memcached (version, the memory limit it runs with, and a real write and read).
import { randomBytes } from 'node:crypto';
import { Context } from '@temporalio/activity';
import net from 'node:net';
import type { HostShell } from './hostShell';
import { programArgv } from '../common/command';
import { expand } from '../config/services';
import type { ServiceCheck } from '../schemas/rollingUpgrade';
import { runPlain } from './ssh/remoteRun';
import { ChecksFailed } from '../common/errors';

export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
}

/** Sends memcached text-protocol commands on one connection and returns each reply. */
async function memcached(host: string, port: number, commands: { send: string; until: RegExp }[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setTimeout(5_000, () => sock.destroy(new Error(`memcached ${host}:${port} did not answer`)));
    const replies: string[] = [];
    let buffer = '';
    const next = () => {
      const cmd = commands[replies.length];
      if (cmd) sock.write(cmd.send);
      else {
        sock.end();
        resolve(replies);
      }
    };
    sock.on('connect', next);
    sock.on('data', (d: Buffer) => {
      buffer += d.toString('utf8');
      const cmd = commands[replies.length];
      if (cmd && cmd.until.test(buffer)) {
        replies.push(buffer);
        buffer = '';
        next();
      }
    });
    sock.on('error', (err) => reject(new Error(`memcached ${host}:${port}: ${err.message}`)));
  });
}

const compareVersions = (a: string, b: string) => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

async function memcachedCheck(c: Extract<ServiceCheck, { kind: 'memcached' }>, host: string): Promise<CheckResult> {
  const name = `memcached ${host}:${c.port}`;
  const key = `opsflow-check-${randomBytes(6).toString('hex')}`;
  const value = randomBytes(8).toString('hex');
  const [versionReply, stats, ...rw] = await memcached(host, c.port, [
    { send: 'version\r\n', until: /\r\n$/ },
    { send: 'stats\r\n', until: /END\r\n$/ },
    ...(c.setGet
      ? [
          { send: `set ${key} 0 60 ${value.length}\r\n${value}\r\n`, until: /\r\n$/ },
          { send: `get ${key}\r\n`, until: /END\r\n$/ },
          { send: `delete ${key}\r\n`, until: /\r\n$/ },
        ]
      : []),
  ]);
  const version = /^VERSION (\S+)/.exec(versionReply)?.[1] ?? '?';
  const limitMb = Number(/STAT limit_maxbytes (\d+)/.exec(stats)?.[1] ?? NaN) / (1024 * 1024);
  const problems: string[] = [];
  if (c.version?.equals && version !== c.version.equals) problems.push(`version ${version}, want ${c.version.equals}`);
  if (c.version?.atLeast && compareVersions(version, c.version.atLeast) < 0) problems.push(`version ${version}, want at least ${c.version.atLeast}`);
  if (c.memoryLimitMb !== undefined && limitMb !== c.memoryLimitMb) problems.push(`memory limit ${limitMb} MB, want ${c.memoryLimitMb} MB (-m)`);
  if (c.setGet && !(rw[0]?.startsWith('STORED') && rw[1]?.includes(value))) problems.push(`set/get failed: ${JSON.stringify(rw.slice(0, 2))}`);
  return { check: name, ok: problems.length === 0, detail: problems.length ? problems.join('; ') : `version ${version}, ${limitMb} MB, set/get ok` };
}

function tcpCheck(host: string, port: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean, detail: string) => {
      sock.destroy();
      resolve({ check: `tcp ${host}:${port}`, ok, detail });
    };
    sock.setTimeout(5_000, () => done(false, 'timed out'));
    sock.on('connect', () => done(true, 'open'));
    sock.on('error', (err) => done(false, err.message));
  });
}

/** Runs one check against a host. `onHost` opens a shell there (SSH, or the worker's own for a local host) for command checks. */
export async function runCheck(c: ServiceCheck, node: { name: string; address: string }, onHost: <T>(fn: (shell: HostShell) => Promise<T>) => Promise<T>): Promise<CheckResult> {
  const vars = { node: node.name, address: node.address };
  try {
    switch (c.kind) {
      case 'http': {
        const url = expand(c.url, vars);
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const body = await res.text();
        const ok = res.status === c.status && (!c.body || body.includes(c.body));
        return { check: `http ${url}`, ok, detail: `HTTP ${res.status}${ok ? '' : `: ${body.slice(0, 200)}`}` };
      }
      case 'tcp':
        return await tcpCheck(expand(c.host ?? node.address, vars), c.port);
      case 'command': {
        const argv = programArgv({ argv: c.command.map((a) => expand(a, vars)), sudo: c.sudo });
        const res = await onHost((shell) => runPlain(shell, argv, 60_000));
        return { check: `command ${c.command.join(' ')}`, ok: res.code === 0, detail: res.code === 0 ? 'exit 0' : `exit ${res.code}: ${(res.stderr || res.stdout).trim().slice(-300)}` };
      }
      case 'memcached':
        return await memcachedCheck(c, expand(c.host ?? node.address, vars));
    }
  } catch (err) {
    return { check: c.kind, ok: false, detail: (err as Error).message };
  }
}

/**
 * Runs a set of checks until all pass, heartbeating, with backoff; once `timeoutMs` has passed, a failing set ends
 * the activity with a non-retryable ChecksFailed naming `what` and each failing check. Call from an activity.
 */
export async function pollChecks(what: string, run: () => Promise<CheckResult[]>, timeoutMs: number): Promise<CheckResult[]> {
  const ctx = Context.current();
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    ctx.heartbeat(attempt);
    const results = await run();
    const failing = results.filter((r) => !r.ok);
    if (!failing.length) return results;
    if (Date.now() - started > timeoutMs) {
      throw new ChecksFailed(`${what}: ${failing.map((r) => `${r.check}: ${r.detail}`).join('; ')}`, { details: [results] });
    }
    await ctx.sleep(Math.min(250 * 2 ** attempt, 5_000));
  }
}
