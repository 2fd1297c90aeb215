// The run guard's state directory on a host: on local disk, ours alone. Run here with sh, as a host runs it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { STATE_DIR_SH } from '../src/activities/ssh/remoteRun';

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
