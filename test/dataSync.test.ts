// dataSync, file store: real rclone between directory trees on this machine (3000 small files and three of 20 MiB),
// through an SFTP remote on a fleet host (host keys checked against the fleet's known_hosts), and run on a fleet
// host over SSH. The roles registry decides the direction; production is never a destination.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataSyncInput } from '../src/schemas/dataSync';
import type { dataSync } from '../src/workflows/dataSync';
import { changeRolesUpdate, rolesWorkflowId, type systemRoles } from '../src/workflows/systemRoles';
import { artifactsDir, makeTree, sftpConfig, treeDigest, writeDataInventory } from './support/data';
import { cancelledRun, failureOf, fleet, recordHistory, startWorker, testEnv, unique, waitFor } from './support/harness';

let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
const queue = unique('datasync');
const art = artifactsDir('datasync');
const dir = (name: string) => path.join(art, name);
const hostRoot = (h: string) => path.join((fleet().hosts.find((x) => x.name === h) as { dir: string }).dir, 'root');
const sftpDest = () => path.join(hostRoot('h2'), unique('sftp-files'));
let sftpTarget: string;
let remoteRoot: string;

const infra = (files: string, extra: Record<string, unknown> = {}) => ({ aws: 'none', environment: 'test', files, ...extra });
const system = (blue: string, green: string, extra: Record<string, unknown> = {}, greenExtra: Record<string, unknown> = {}) => ({
  infrastructures: { blue: infra(blue), green: infra(green, greenExtra) },
  roles: { production: 'blue', standby: 'green' },
  ...extra,
});

beforeAll(async () => {
  env = await testEnv();
  makeTree(dir('blue'), { small: 3000, large: 3, largeMb: 20 });
  makeTree(dir('sftp-src'), { small: 400, large: 1, largeMb: 20, seed: 'sftp' });
  makeTree(dir('churn-src'), { small: 200, large: 0, largeMb: 0, seed: 'churn' });
  mkdirSync(dir('churn-src/churn'));
  writeFileSync(dir('churn-src/churn/changing.txt'), 'version 0\n');
  makeTree(dir('reg-green'), { small: 50, large: 0, largeMb: 0, seed: 'registry' });
  sftpTarget = sftpDest();
  // rclone on h1 runs as the fleet user: the trees it reads and writes there are its own.
  remoteRoot = path.join(hostRoot('h1'), unique('rclone'));
  makeTree(path.join(remoteRoot, 'src'), { small: 100, large: 0, largeMb: 0, seed: 'remote' });
  execFileSync('chown', ['-R', fleet().user, remoteRoot]);
  writeFileSync(dir('alias.conf'), `[src]\ntype = alias\nremote = ${path.join(remoteRoot, 'src')}\n`);
  writeFileSync(dir('empty_known_hosts'), '');
  chmodSync(art, 0o755);
  const inventory = writeDataInventory({
    aws: { none: { region: 'us-east-1' } },
    systems: {
      filesys: system(dir('blue'), dir('green')),
      churnsys: system(dir('churn-src'), dir('churn-dst')),
      sftpsys: system(dir('sftp-src'), `fleet:${sftpTarget}`, { rcloneConfig: sftpConfig(dir('rclone.conf'), fleet().knownHostsFile) }),
      badkeys: system(dir('sftp-src'), `fleet:${sftpDest()}`, { rcloneConfig: sftpConfig(dir('rclone-bad.conf'), dir('empty_known_hosts')) }),
      openkeys: system(dir('sftp-src'), `fleet:${sftpDest()}`, { rcloneConfig: sftpConfig(dir('rclone-open.conf')) }),
      remotesys: system('src:', path.join(remoteRoot, 'dst'), { rcloneConfig: dir('alias.conf') }, { rcloneOn: 'h1' }),
      samefiles: system(dir('blue'), `${dir('blue')}/`),
      regsys: system(dir('reg-blue'), dir('reg-green')),
      slowsys: system(dir('slow-src'), dir('slow-dst')),
    },
  });
  worker = await startWorker(env, inventory, queue);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  rmSync(art, { recursive: true, force: true });
  rmSync(remoteRoot, { recursive: true, force: true });
});

function start(input: DataSyncInput, id = unique('sync')): Promise<WorkflowHandle<typeof dataSync>> {
  return env.client.workflow.start<typeof dataSync>('dataSync', { taskQueue: queue, workflowId: id, args: [{ stores: ['files'], failure: { onFailure: 'fail' }, ...input }] });
}

describe('dataSync: files', () => {
  it('copies 3000 small files and three large ones, then propagates deletions and changes; the check finds the trees identical', async () => {
    const first = await start({ system: 'filesys' });
    const r1 = await first.result();
    expect(r1.plan).toMatchObject({ from: 'blue', to: 'green', files: { runsOn: 'worker' } });
    const files1 = r1.files as Exclude<typeof r1.files, 'skipped' | undefined>;
    expect(files1.sync).toMatchObject({ transfers: 3003, errors: 0 });
    expect(files1.check).toMatchObject({ same: 3003, differences: 0 });
    expect(treeDigest(dir('green'))).toEqual(treeDigest(dir('blue')));
    recordHistory(first, 'dataSync-files');

    for (let i = 0; i < 3000; i += 30) rmSync(path.join(dir('blue'), `user${i % 30}`, `upload${i % 7}`, `file${i}.dat`));
    rmSync(dir('blue/large/big2.bin'));
    for (let i = 1; i < 6; i++) writeFileSync(path.join(dir('blue'), `user${i % 30}`, `upload${i % 7}`, `file${i}.dat`), `changed ${i}\n`);
    const r2 = await (await start({ system: 'filesys' })).result();
    const files2 = r2.files as Exclude<typeof r2.files, 'skipped' | undefined>;
    expect(files2.sync).toMatchObject({ deletes: 101, transfers: 5 });
    expect(files2.check.differences).toBe(0);
    expect(treeDigest(dir('green'))).toEqual(treeDigest(dir('blue')));
  });

  it('a file replaced while the sync runs is caught by the check, which names it', async () => {
    let version = 0;
    let busy = false;
    const churn = setInterval(() => {
      if (busy) return;
      busy = true;
      // Replaced atomically from outside the tree, as an upload finishing would be.
      version++;
      writeFileSync(dir('changing.tmp'), `version ${version}\n`.repeat(1 + (version % 5)));
      renameSync(dir('changing.tmp'), dir('churn-src/churn/changing.txt'));
      busy = false;
    }, 20);
    try {
      const failure = await failureOf(await start({ system: 'churnsys' }));
      expect(failure.type).toBe('FilesDiffer');
      expect(failure.message).toContain('found 1 difference(s)');
      expect(failure.message).toContain('churn/changing.txt (differs)');
    } finally {
      clearInterval(churn);
    }
  });

  it('syncs to an SFTP remote on a fleet host, host keys verified, deletions included', async () => {
    const r1 = await (await start({ system: 'sftpsys' })).result();
    expect(r1.files).toMatchObject({ sync: { transfers: 401 }, check: { differences: 0, same: 401 } });
    expect(treeDigest(sftpTarget)).toEqual(treeDigest(dir('sftp-src')));
    rmSync(dir('sftp-src/user3'), { recursive: true });
    const r2 = await (await start({ system: 'sftpsys' })).result();
    expect((r2.files as { sync: { deletes: number } }).sync.deletes).toBeGreaterThan(0);
    expect(treeDigest(sftpTarget)).toEqual(treeDigest(dir('sftp-src')));
  });

  it('cancelled mid-copy: rclone is stopped before the run ends, the files it was writing are removed, every file left is whole', async () => {
    makeTree(dir('slow-src'), { small: 40, large: 4, largeMb: 20, seed: 'slow' });
    // Production's files are older than the sync, as in life: a file rclone finishes carries its time.
    const yesterday = new Date(Date.now() - 86_400_000);
    for (const file of treeDigest(dir('slow-src')).keys()) utimesSync(path.join(dir('slow-src'), file), yesterday, yesterday);
    const rcloneInto = (dst: string) => execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('rclone') && l.includes(dst));
    // Slowed down so that the run is cancelled mid-copy: rclone takes its flags from the environment it inherits.
    process.env.RCLONE_BWLIMIT = '2M';
    try {
      const h = await start({ system: 'slowsys' });
      await waitFor(() => [0, 1, 2, 3].some((i) => (statSync(dir(`slow-dst/large/big${i}.bin`), { throwIfNoEntry: false })?.size ?? 0) > 0), 'rclone to be writing a large file', 60_000, 50);
      expect(rcloneInto(dir('slow-dst'))).not.toEqual([]);
      await h.cancel();
      const s = await cancelledRun(h);
      expect(s.undo?.putBack).toEqual([`remove what rclone left unfinished in ${dir('slow-dst')}`]);
      expect(s.steps.map((x) => x.name)).toContainEqual(expect.stringMatching(/^removed \d+ unfinished file\(s\): .*large\/big\d\.bin/));
      expect(rcloneInto(dir('slow-dst'))).toEqual([]);
    } finally {
      delete process.env.RCLONE_BWLIMIT;
    }
    const src = treeDigest(dir('slow-src'));
    const left = treeDigest(dir('slow-dst'));
    expect(left.size).toBeLessThan(src.size);
    for (const [file, digest] of left) expect([file, digest]).toEqual([file, src.get(file)]);
  });

  it('refuses an SFTP host whose key known_hosts does not list, and a remote that would accept any key', async () => {
    const unknownKey = await failureOf(await start({ system: 'badkeys' }));
    expect(unknownKey.type).toBe('HostKeyRejected');
    expect(unknownKey.message).toMatch(/knownhosts: key is unknown/);
    const open = await failureOf(await start({ system: 'openkeys' }));
    expect(open.type).toBe('Misconfigured');
    expect(open.message).toContain('SFTP remote "fleet" has no known_hosts_file');
  });

  it('runs rclone on the standby host over SSH when the inventory says so, the remotes passed through stdin', async () => {
    const r = await (await start({ system: 'remotesys' })).result();
    expect(r.plan.files?.runsOn).toBe('test/h1');
    expect(r.files).toMatchObject({ sync: { transfers: 100, runsOn: 'test/h1' }, check: { differences: 0 } });
    expect(treeDigest(path.join(remoteRoot, 'dst'))).toEqual(treeDigest(path.join(remoteRoot, 'src')));
  });

  it('refuses production as the destination, and two infrastructures sharing one file store', async () => {
    const toProduction = await failureOf(await start({ system: 'filesys', to: 'blue' }));
    expect(toProduction.type).toBe('DestinationIsProduction');
    expect(toProduction.message).toContain('blue is filesys\'s production (roles registry)');
    const same = await failureOf(await start({ system: 'samefiles' }));
    expect(same.type).toBe('Misconfigured');
    expect(same.message).toContain('name the same file store');
    const bad = await failureOf(await start({ system: 'filesys', stores: ['files', 'files'], key: '20261301' } as DataSyncInput));
    expect(bad.type).toBe('InvalidInput');
    expect(bad.message).toContain('stores: a store is named twice');
    expect(bad.message).toContain('key: a backup key');
  });

  it('takes the direction from the roles registry: after a swap, the old production receives', async () => {
    const roles = await env.client.workflow.start<typeof systemRoles>('systemRoles', { taskQueue: queue, workflowId: rolesWorkflowId('regsys'), args: [{ system: 'regsys', production: 'blue', standby: 'green' }] });
    try {
      await roles.executeUpdate(changeRolesUpdate, { args: [{ kind: 'swap', changeId: unique('swap'), by: 'test', expectProduction: 'blue' }] });
      const plan = (await (await start({ system: 'regsys', dryRun: true })).result()).plan;
      expect(plan).toMatchObject({ production: 'green', standby: 'blue', from: 'green', to: 'blue' });
      const r = await (await start({ system: 'regsys', to: 'blue' })).result();
      expect(r.files).toMatchObject({ check: { differences: 0, same: 50 } });
      expect(treeDigest(dir('reg-blue'))).toEqual(treeDigest(dir('reg-green')));
      expect((await failureOf(await start({ system: 'regsys', to: 'green' }))).type).toBe('DestinationIsProduction');
      // A release holding the change embargo is preparing the standby: a sync would overwrite its work.
      await roles.executeUpdate(changeRolesUpdate, { args: [{ kind: 'embargo', changeId: unique('embargo'), by: 'carol', infrastructure: 'green', workflowId: 'release-42', reason: 'complex release v42' }] });
      const embargoed = await failureOf(await start({ system: 'regsys' }));
      expect(embargoed).toMatchObject({ type: 'Embargoed', message: expect.stringContaining('held by carol (run release-42') });
    } finally {
      await roles.terminate('test done');
    }
  });
});
