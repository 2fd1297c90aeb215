// A git repository of releases of the test web service (src/sandbox/releaseRepo.ts), served by a real `git daemon`
// on loopback for the life of the test file.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildReleaseRepo, gitDaemonArgs, type ReleaseSpec } from '../../src/sandbox/releaseRepo';
import { freePort, portOpen, waitFor } from './harness';

export interface ReleaseRepo {
  url: string;
  bare: string;
  /** Commit id per release name. */
  commits: Record<string, string>;
  stop(): void;
}

/** Releases in order: each `[name, health status]` is a commit on top of the previous one. */
export async function startReleaseRepo(releases: ReleaseSpec[]): Promise<ReleaseRepo> {
  const base = mkdtempSync(path.join(tmpdir(), 'opsflow-repo-'));
  const { bare, commits } = buildReleaseRepo(base, releases);
  const port = await freePort();
  const daemon = spawn('git', gitDaemonArgs(base, port), { stdio: 'ignore' });
  await waitFor(() => portOpen(port), 'git daemon', 10_000);
  return { url: `git://127.0.0.1:${port}/app.git`, bare, commits, stop: () => daemon.kill() };
}
