// A git repository of releases of the demo web service (test/support/webapp), served by `git daemon` on loopback,
// so nodes clone it and the tag step pushes to it as they would to a real remote.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WEBAPP_DIR } from './paths';

/** `[name, health status]`: each release is a commit on top of the previous one, tagged with its name. */
export type ReleaseSpec = [string, number];

// Fixed author and dates make the commit ids the same on every machine, so inputs naming them can be committed.
const GIT_ENV = { GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' };
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=opsflow', '-c', 'user.email=opsflow@localhost', ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...GIT_ENV } }).trim();

/** Creates BASE/app.git with the releases (kept as it is when it exists) and returns the commit id of each. */
export function buildReleaseRepo(base: string, releases: ReleaseSpec[]): { bare: string; commits: Record<string, string> } {
  mkdirSync(base, { recursive: true });
  chmodSync(base, 0o755);
  const bare = path.join(base, 'app.git');
  if (!existsSync(bare)) {
    const work = path.join(base, 'work');
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    copyFileSync(path.join(WEBAPP_DIR, 'app.py'), path.join(work, 'app.py'));
    for (const [name, health] of releases) {
      writeFileSync(path.join(work, 'HEALTH'), `${health}\n`);
      writeFileSync(path.join(work, 'VERSION'), `${name}\n`);
      git(work, 'add', '-A');
      git(work, 'commit', '-q', '-m', name);
      git(work, 'tag', name);
    }
    execFileSync('git', ['clone', '-q', '--bare', work, bare]);
  }
  return { bare, commits: Object.fromEntries(releases.map(([name]) => [name, git(bare, 'rev-parse', `${name}^{commit}`)])) };
}

/** `git daemon` arguments serving BASE's repositories read-write on 127.0.0.1:port; more options before BASE. */
export function gitDaemonArgs(base: string, port: number, options: string[] = []): string[] {
  return ['daemon', '--reuseaddr', '--listen=127.0.0.1', `--port=${port}`, `--base-path=${base}`, '--export-all', '--enable=receive-pack', ...options, base];
}
