// Shell quoting, checked by real shells: every quoted argument must come back exactly as it went in.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { commandLine, programArgv } from '../src/common/command';
import { quote, quoteArgv } from '../src/common/shell';
import { localShell } from '../src/activities/hostShell';

/** Shells a quoted line meets: sh and bash as login shells on SSH hosts, and a local host's (src/activities/hostShell.ts). */
const SHELLS = ['/bin/sh', 'bash', 'a local host'];

const NASTY = [
  '; rm -rf /',
  '$(id)',
  '`id`',
  '${HOME}',
  '$HOME',
  "it's",
  "'",
  "''",
  '"double" quotes',
  '"',
  'a\nb',
  '\n',
  '*',
  '?',
  '[a-z]*',
  '',
  ' ',
  'tab\there',
  '  leading and trailing  ',
  'héllo wörld ☃ 日本語 🚀',
  '-n',
  '-e',
  '--',
  '-rf',
  '~',
  '~root/x',
  'a=b',
  '!',
  '!!',
  '#not a comment',
  'a && b || c | d & e',
  '> out.txt',
  '< /etc/passwd',
  '{a,b}',
  '\\',
  '\\n',
  '%1',
  'x\'"$`\\\n;|&<>(){}[]*?~#!',
];

let cwd: string;

beforeAll(() => {
  // A directory with files in it, so that an unquoted * or ? would visibly expand.
  cwd = mkdtempSync(path.join(tmpdir(), 'opsflow-shell-'));
  for (const f of ['a', 'b', 'x']) writeFileSync(path.join(cwd, f), '');
});

/** Runs `line` with `shell -c` in the test directory; stdout, stderr and the exit status. */
async function run(shell: string, line: string): Promise<{ stdout: string; stderr: string; status: number | null }> {
  if (shell === 'a local host') {
    const r = await localShell().run(`cd ${quote(cwd)} && ${line}`);
    return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), status: r.code };
  }
  const r = spawnSync(shell, ['-c', line], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/nonexistent-home' } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const printed = (args: string[]) => args.map((a) => `${a}\n`).join('');

describe.each(SHELLS)('%s', (shell) => {
  it.each(NASTY.map((a) => [JSON.stringify(a), a]))('passes %s through quote() literally', async (_, arg) => {
    const r = await run(shell, `printf '%s\\n' ${quote(arg)}`);
    expect(r).toEqual({ stdout: printed([arg]), stderr: '', status: 0 });
  });

  it('passes every argument of quoteArgv() as exactly one argument, in order', async () => {
    const before = readdirSync(cwd);
    const r = await run(shell, quoteArgv(['printf', '%s\\n', ...NASTY]));
    expect(r).toEqual({ stdout: printed(NASTY), stderr: '', status: 0 });
    // Nothing ran, nothing was redirected: the directory holds what it held.
    expect(readdirSync(cwd)).toEqual(before);
  });

  it('runs commandLine() with its env and cwd, and each argument literal', async () => {
    const weird = path.join(cwd, "dir with 'quotes' $(id) and\nnewline");
    mkdirSync(weird, { recursive: true });
    const line = commandLine({
      argv: ['sh', '-c', 'printf "%s\\n" "$(pwd)" "$GREETING" "$@"', 'sh', ...NASTY],
      cwd: weird,
      env: { GREETING: "hello; world $(id) 'q'" },
    });
    const r = await run(shell, line);
    expect(r).toEqual({ stdout: printed([weird, "hello; world $(id) 'q'", ...NASTY]), stderr: '', status: 0 });
  });

  it('runs a program whose name looks like an assignment as that program, not as an assignment', async () => {
    const r = await run(shell, commandLine({ argv: ['FOO=bar', 'printf', 'injected'] }));
    expect(r.stdout).toBe('');
    expect(r.status).toBe(127);
  });
});

describe('quote', () => {
  it('leaves plain words alone and single-quotes everything else', () => {
    for (const w of ['uname', '-r', '--since=2h', '/var/log/syslog', 'user@host:22', 'a,b', '50%', 'v1.2.3+build']) expect(quote(w)).toBe(w);
    expect(quote('')).toBe("''");
    expect(quote('two words')).toBe("'two words'");
    expect(quote("it's")).toBe("'it'\\''s'");
  });
});

describe('commandLine', () => {
  it('shows the command as the operator approves it', () => {
    expect(commandLine({ argv: ['systemctl', 'restart', 'nginx'] })).toBe('systemctl restart nginx');
    expect(commandLine({ argv: ['touch', '/tmp/a b'], sudo: true, cwd: '/srv/app', env: { A: '1', B: 'x y' } })).toBe("cd /srv/app && sudo -n -- env -- A=1 'B=x y' touch '/tmp/a b'");
  });

  it('puts sudo -n first, then env, then the program', () => {
    expect(programArgv({ argv: ['id'], sudo: true, env: { X: '1' } })).toEqual(['sudo', '-n', '--', 'env', '--', 'X=1', 'id']);
    expect(programArgv({ argv: ['id'] })).toEqual(['id']);
  });

  it('runs through a real shell with env -- and the variables set', () => {
    const out = execFileSync('sh', ['-c', commandLine({ argv: ['sh', '-c', 'printf "%s|%s" "$A" "$B"'], env: { A: '$(id)', B: '' } })], { encoding: 'utf8' });
    expect(out).toBe('$(id)|');
  });
});
