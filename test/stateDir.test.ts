// The run guard's state directory on a host: on local disk, ours alone. Run here with sh, as a host runs it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { guardedCommand, STATE_DIR_SH } from '../src/activities/ssh/remoteRun';
import { waitFor } from './support/harness';

const user = `opsflow-test-${process.pid}`;
const base = `/var/tmp/opsflow-${user}`;
const run = (env: Record<string, string> = {}) => spawnSync('sh', ['-c', `${STATE_DIR_SH}\nprintf %s "$base"`], { env: { PATH: process.env.PATH ?? '', USER: user, ...env }, encoding: 'utf8' });

afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('the state directory', () => {
  it('defaults to /var/tmp/opsflow-<user>, created for this user alone', () => {
    const res = run();
    expect(res.stdout).toBe(base);
    expect(statSync(base).mode & 0o777).toBe(0o700);
  });

  it('refuses one that is a symlink or belongs to another user', () => {
    symlinkSync(mkdtempSync(path.join(tmpdir(), 'elsewhere-')), base);
    expect(run()).toMatchObject({ status: 125, stderr: expect.stringContaining(`${base} is a symlink or belongs to another user`) });
    rmSync(base);
    mkdirSync(base);
    spawnSync('chown', ['nobody', base]);
    expect(run()).toMatchObject({ status: 125, stderr: expect.stringContaining('belongs to another user') });
  });

  it('is OPSFLOW_STATE_DIR when that is set', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'state-'));
    expect(run({ OPSFLOW_STATE_DIR: dir }).stdout).toBe(dir);
  });
});

describe('the run records', () => {
  const days = (n: number) => new Date(Date.now() - n * 86_400_000);
  const age = (p: string, when: Date) => utimesSync(p, when, when);

  it('are pruned after 14 days, at most once an hour per directory, not after every command', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'state-'));
    const bootId = path.join(dir, 'boot_id');
    writeFileSync(bootId, 'boot-1\n');
    const runs = path.join(dir, 'runs');
    let n = 0;
    const command = () => spawnSync('sh', ['-c', guardedCommand(`key-${++n}`, { argv: ['true'] }, 1024, 'SHA256:test', bootId)], { env: { PATH: process.env.PATH ?? '', USER: user, OPSFLOW_STATE_DIR: dir }, encoding: 'utf8' });
    const record = (name: string, ageDays: number) => {
      mkdirSync(path.join(runs, name), { recursive: true });
      age(path.join(runs, name), days(ageDays));
    };
    try {
      record('old-1', 15);
      record('recent', 13);
      expect(command().stdout).toContain('opsflow:started 0');
      await waitFor(() => !existsSync(path.join(runs, 'old-1')), 'the first command to prune the old record');
      expect(existsSync(path.join(runs, 'recent'))).toBe(true);
      expect(existsSync(path.join(runs, 'key-1'))).toBe(true);

      // Pruned within the hour: the next command leaves an old record alone.
      record('old-2', 15);
      expect(command().stdout).toContain('opsflow:started 0');
      await new Promise((r) => setTimeout(r, 500));
      expect(existsSync(path.join(runs, 'old-2'))).toBe(true);

      // An hour later, the next command prunes again.
      age(path.join(runs, '.pruned'), new Date(Date.now() - 61 * 60_000));
      expect(command().stdout).toContain('opsflow:started 0');
      await waitFor(() => !existsSync(path.join(runs, 'old-2')), 'a command an hour later to prune');
      expect(existsSync(path.join(runs, 'recent'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
