// A git repository of releases of the test web service, served by a real `git daemon` on loopback, so nodes
// clone it and the tag step pushes to it as they would to a real remote.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, portOpen, waitFor } from './harness';

export interface ReleaseRepo {
  url: string;
  bare: string;
  /** Commit id per release name. */
  commits: Record<string, string>;
  stop(): void;
}

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@localhost', ...args], { cwd, encoding: 'utf8' }).trim();

/** Releases in order: each `[name, health status]` is a commit on top of the previous one. */
export async function startReleaseRepo(releases: [string, number][]): Promise<ReleaseRepo> {
  const base = mkdtempSync(path.join(tmpdir(), 'opsflow-repo-'));
  chmodSync(base, 0o755);
  const work = path.join(base, 'work');
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  copyFileSync(path.join(__dirname, 'webapp/app.py'), path.join(work, 'app.py'));
  const commits: Record<string, string> = {};
  for (const [name, health] of releases) {
    writeFileSync(path.join(work, 'HEALTH'), `${health}\n`);
    writeFileSync(path.join(work, 'VERSION'), `${name}\n`);
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', name);
    commits[name] = git(work, 'rev-parse', 'HEAD');
  }
  const bare = path.join(base, 'app.git');
  execFileSync('git', ['clone', '-q', '--bare', work, bare]);
  const port = await freePort();
  const daemon = spawn('git', ['daemon', '--reuseaddr', '--listen=127.0.0.1', `--port=${port}`, `--base-path=${base}`, '--export-all', '--enable=receive-pack', base], { stdio: 'ignore' });
  await waitFor(() => portOpen(port), 'git daemon', 10_000);
  return { url: `git://127.0.0.1:${port}/app.git`, bare, commits, stop: () => daemon.kill() };
}
