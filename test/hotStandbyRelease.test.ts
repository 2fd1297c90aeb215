// hotStandbyRelease against real components: two PostgreSQL clusters playing the production and standby
// databases, moto_server for S3 (backups), Route53 (the swap) and EC2 (Elastic IPs), the Cloudflare double for
// the second DNS provider, and fleet hosts h5 (infrastructure "hk") and h6 ("eu") reached over SSH, each serving
// its release marker over HTTP for the business checks.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AllocateAddressCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand, ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HotStandbyReleaseInput } from '../src/schemas/hotStandbyRelease';
import type { RunStatus } from '../src/runbook/protocol';
import type { hotStandbyRelease } from '../src/workflows/hotStandbyRelease';
import { rolesQuery, rolesWorkflowId, type RolesState } from '../src/workflows/systemRoles';
import { FLEET_USER } from './support/fleet';
import { startCloudflareDouble, type CloudflareDouble } from './support/cloudflareDouble';
import { cancelledRun, failureOf, fleet, freePort, hostFile, portOpen, readHostFile, recordHistory, runOpsflow, spawnWorker, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { startMoto, type TestMoto } from './support/moto';
import { startPostgres, type TestPostgres } from './support/postgres';
import { startReleaseRepo, type ReleaseRepo } from './support/releaseRepo';

const INFRA = { hk: { host: 'h5', region: 'ap-east-1', account: 'upstream' }, eu: { host: 'h6', region: 'eu-west-3', account: 'upstream-alt' } } as const;
type Infra = keyof typeof INFRA;
const NAMES = ['gigadb.test', 'files.gigadb.test'];

let env: TestWorkflowEnvironment;
let moto: TestMoto;
let cf: CloudflareDouble;
const pg = {} as Record<Infra, TestPostgres>;
const web: ChildProcess[] = [];
const eips = {} as Record<Infra, Record<string, string>>;
let zoneId: string;
let r53: Route53Client;
let inventoryFile: string;
let worker: { stop(): Promise<void> } | undefined;
let repo: ReleaseRepo;
const appPort = {} as Record<Infra, number>;
const appSuffix = unique('app');
const appDir = (i: Infra) => hostFile(INFRA[i].host, appSuffix);
const queue = unique('standby');

/** A file on a fleet host, owned by the fleet user as if the host had written it. */
function asHostFile(host: string, name: string, content: string): void {
  writeFileSync(hostFile(host, name), content);
  execFileSync('chown', [FLEET_USER, hostFile(host, name)]);
}

const awsClient = <T>(C: new (o: object) => T, region: string) => new C({ region, endpoint: moto.endpoint, credentials: moto.credentials });

async function route53Records(): Promise<Record<string, string[]>> {
  const res = await r53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
  const out: Record<string, string[]> = Object.fromEntries(NAMES.map((n) => [n, []]));
  for (const rr of res.ResourceRecordSets ?? []) {
    const name = (rr.Name ?? '').replace(/\.$/, '');
    if (rr.Type === 'A' && name in out) out[name] = (rr.ResourceRecords ?? []).map((r) => r.Value ?? '').sort();
  }
  return out;
}

const addressesOf = (infra: Infra) => Object.fromEntries(NAMES.map((n) => [n, [eips[infra][n]]]));

const roles = () => readRolesOf('gigadb');

async function status(handle: WorkflowHandle): Promise<RunStatus> {
  return handle.query<RunStatus>('status');
}

async function waitForGate(handle: WorkflowHandle, gate: string): Promise<RunStatus> {
  return waitFor(async () => {
    const s = await status(handle);
    return s.gates.some((g) => g.id === gate && g.state === 'open') ? s : undefined;
  }, `gate ${gate}`, 90_000);
}

function start(input: Partial<HotStandbyReleaseInput>, id = unique('hsr')): Promise<WorkflowHandle<typeof hotStandbyRelease>> {
  return env.client.workflow.start<typeof hotStandbyRelease>('hotStandbyRelease', {
    taskQueue: queue,
    workflowId: id,
    args: [{ system: 'gigadb', release: 'v2', kind: 'complex', requestedBy: 'carol', failure: { onFailure: 'fail' }, ...input } as HotStandbyReleaseInput],
  });
}

const sh = (command: string[]) => ({ host: 'web', command });

function inventory(): string {
  const infra = (name: Infra) => ({
    aws: INFRA[name].account,
    environment: name,
    database: `db-${name}`,
    url: `http://127.0.0.1:${(web[name === 'hk' ? 0 : 1] as ChildProcess & { port: number }).port}/`,
    addresses: Object.fromEntries(NAMES.map((n) => [n, { eip: `eip-${n}` }])),
    // Maintenance off takes a moment, as a real one does: long enough for a test to act while it runs.
    // The host's own directory is a path the inventory names, as a real host's would be: fleet hosts share a home.
    maintenance: { on: sh(['touch', hostFile(INFRA[name].host, 'maintenance')]), off: sh(['sh', '-c', 'sleep 2; rm -f "$1"', 'off', hostFile(INFRA[name].host, 'maintenance')]) },
    // The release id arrives as one argument ($1), never as shell text.
    deploy: { host: 'web', command: ['sh', '-c', 'printf %s "$1" > "$2"', 'deploy', '{release}', hostFile(INFRA[name].host, 'release.txt')] },
    checks: [
      { url: `http://127.0.0.1:${(web[name === 'hk' ? 0 : 1] as ChildProcess & { port: number }).port}/release.txt`, body: '{release}' },
      { url: `http://127.0.0.1:${(web[name === 'hk' ? 0 : 1] as ChildProcess & { port: number }).port}/healthy` },
    ],
  });
  const database = (name: Infra) => ({ host: '127.0.0.1', port: pg[name].port, database: 'gigadb', user: pg[name].user, passwordEnv: `PG_${name.toUpperCase()}_PASSWORD`, checks: [{ name: 'datasets', sql: 'SELECT count(*) > 0 FROM datasets', expect: 't' }] });
  const system = (dns: object) => ({
    timezone: 'Asia/Hong_Kong',
    roles: { production: 'hk', standby: 'eu' },
    infrastructures: { hk: infra('hk'), eu: infra('eu') },
    dns,
    backups: { account: 'upstream', bucket: 'gigadb-backups', prefix: 'db/' },
    schedules: { files: '0 2 * * *', database: '30 2 * * *' },
  });
  return writeInventory({
    environments: Object.fromEntries(
      (Object.keys(INFRA) as Infra[]).map((i) => [
        i,
        {
          hosts: { web: { address: fleet().hosts.find((h) => h.name === INFRA[i].host)?.address } },
          // The service gigadb-bg deploys through child blueGreenDeploy runs: the test web app of blueGreen.test.ts.
          services: {
            app: {
              nodes: ['web'],
              blue: 'web',
              release: { root: `${appDir(i)}/deploys`, live: `${appDir(i)}/current`, restart: ['sh', path.join(__dirname, 'support/webapp/ctl.sh'), '{live}', '{address}', String(appPort[i]), appDir(i)], keep: 3 },
              health: { url: `http://{address}:${appPort[i]}/health`, timeout: '4s' },
            },
          },
        },
      ]),
    ),
    sections: {
      aws: Object.fromEntries((Object.keys(INFRA) as Infra[]).map((i) => [INFRA[i].account, { region: INFRA[i].region, endpoint: moto.endpoint, accessKeyIdEnv: 'MOTO_KEY_ID', secretAccessKeyEnv: 'MOTO_SECRET' }])),
      databases: { 'db-hk': database('hk'), 'db-eu': database('eu') },
      systems: {
        gigadb: system({ provider: 'route53', account: 'upstream', zoneId, ttl: 60 }),
        'gigadb-cf': { ...system({ provider: 'cloudflare', zoneId: cf.zoneId, tokenEnv: 'CF_TOKEN', apiUrl: cf.apiUrl }), schedules: {} },
        'gigadb-bg': {
          roles: { production: 'hk', standby: 'eu' },
          infrastructures: Object.fromEntries(
            (Object.keys(INFRA) as Infra[]).map((i) => [
              i,
              { aws: INFRA[i].account, environment: i, deploy: { blueGreenDeploy: { service: 'app', git: { repo: repo.url } } }, checks: [{ url: `http://${fleet().hosts.find((h) => h.name === INFRA[i].host)?.address}:${appPort[i]}/`, body: '{release}' }] },
            ]),
          ),
        },
      },
    },
  });
}

beforeAll(async () => {
  env = await testEnv();
  moto = await startMoto();
  process.env.MOTO_KEY_ID = moto.credentials.accessKeyId;
  process.env.MOTO_SECRET = moto.credentials.secretAccessKey;
  for (const name of Object.keys(INFRA) as Infra[]) {
    pg[name] = await startPostgres();
    process.env[`PG_${name.toUpperCase()}_PASSWORD`] = pg[name].password;
    await pg[name].query('postgres', 'CREATE DATABASE gigadb');
    const ec2 = awsClient(EC2Client, INFRA[name].region);
    eips[name] = {};
    for (const n of NAMES) {
      const a = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: [{ Key: 'Name', Value: `eip-${n}` }] }] }));
      eips[name][n] = a.PublicIp as string;
    }
    const port = await freePort();
    const dir = hostFile(INFRA[name].host, '');
    asHostFile(INFRA[name].host, 'healthy', 'ok\n');
    asHostFile(INFRA[name].host, 'release.txt', 'v1');
    const server = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', dir, String(port)], { stdio: 'ignore' });
    web.push(Object.assign(server, { port }));
    await waitFor(() => portOpen(port), 'release marker server');
  }
  // Production's data, and an older copy on the standby.
  await pg.hk.query('gigadb', "CREATE TABLE datasets (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO datasets (title) SELECT 'dataset ' || g FROM generate_series(1, 5000) g; CREATE TABLE files (id serial PRIMARY KEY, dataset int REFERENCES datasets(id), size bigint); INSERT INTO files (dataset, size) SELECT 1 + g % 5000, g FROM generate_series(1, 20000) g");
  await pg.eu.query('gigadb', "CREATE TABLE datasets (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO datasets (title) VALUES ('old')");
  await awsClient(S3Client, INFRA.hk.region).send(new CreateBucketCommand({ Bucket: 'gigadb-backups', CreateBucketConfiguration: { LocationConstraint: INFRA.hk.region } }));
  r53 = awsClient(Route53Client, 'us-east-1');
  const zone = await r53.send(new CreateHostedZoneCommand({ Name: 'gigadb.test', CallerReference: unique('zone') }));
  zoneId = (zone.HostedZone?.Id as string).replace('/hostedzone/', '');
  await r53.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: zoneId, ChangeBatch: { Changes: NAMES.map((n) => ({ Action: 'UPSERT', ResourceRecordSet: { Name: `${n}.`, Type: 'A', TTL: 60, ResourceRecords: [{ Value: eips.hk[n] }] } })) } }));
  cf = await startCloudflareDouble(NAMES.map((n) => ({ type: 'A', name: n, content: '192.0.2.1', ttl: 60, proxied: false })));
  process.env.CF_TOKEN = cf.token;
  repo = await startReleaseRepo([['r1', 200], ['r2', 200]]);
  // Releases are named by tag (the repository tags each with its name): the deploy's git ref is the release id.
  for (const i of Object.keys(INFRA) as Infra[]) {
    execFileSync('install', ['-d', '-o', FLEET_USER, appDir(i)]);
    appPort[i] = await freePort();
  }
  inventoryFile = inventory();
  for (const kind of ['files', 'database']) {
    await env.client.schedule.create({
      scheduleId: `opsflow:gigadb:${kind}`,
      spec: { cronExpressions: ['0 2 * * *'] },
      action: { type: 'startWorkflow', workflowType: 'dataSync', taskQueue: queue, args: [{ system: 'gigadb', stores: [kind] }] },
    });
  }
  worker = await startWorker(env, inventoryFile, queue);
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  repo?.stop();
  for (const i of Object.keys(INFRA) as Infra[]) {
    try {
      process.kill(Number(readFileSync(path.join(appDir(i), 'app.pid'), 'utf8')), 'SIGTERM');
    } catch {
      // never started
    }
  }
  for (const kind of ['files', 'database']) await env?.client.schedule.getHandle(`opsflow:gigadb:${kind}`).delete().catch(() => undefined);
  web.forEach((w) => w.kill());
  Object.values(pg).forEach((p) => p.stop());
  moto?.stop();
  await cf?.close();
  await env?.teardown();
});

const paused = async (kind: string) => (await env.client.schedule.getHandle(`opsflow:gigadb:${kind}`).describe()).state.paused;

/** gigadb as it was before a run that ended early: its DNS records and roles, no embargo, schedules on, maintenance off. */
async function expectAsBefore(dns: Record<string, string[]>, rolesBefore: RolesState): Promise<void> {
  expect(await route53Records()).toEqual(dns);
  const after = await roles();
  expect([after.production, after.standby]).toEqual([rolesBefore.production, rolesBefore.standby]);
  expect(after.embargo).toBeUndefined();
  expect(await paused('files')).toBe(false);
  expect(await paused('database')).toBe(false);
  expect(existsSync(hostFile(INFRA[rolesBefore.production as Infra].host, 'maintenance'))).toBe(false);
}

describe('hotStandbyRelease', () => {
  it('refuses bad input up front, changing nothing', async () => {
    const before = await route53Records();
    const cases: [Partial<HotStandbyReleaseInput>, RegExp][] = [
      [{ system: 'nosuch' }, /unknown system "nosuch"/],
      [{ backupKey: '2026-11-22' }, /backupKey: a backup key: YYYYMMDD/],
      [{ standbyRegion: 'us-west-2' }, /standbyRegion: gigadb runs in ap-east-1 and eu-west-3, not us-west-2/],
      [{ standbyRegion: 'ap-east-1' }, /ap-east-1 is gigadb's production \(hk\)/],
      [{ release: 'v2; rm -rf /' }, /release/],
    ];
    for (const [input, message] of cases) {
      const f = await failureOf(await start(input));
      expect(f.message).toMatch(message);
      expect(['InvalidInput', 'UnknownTarget']).toContain(f.type);
    }
    expect(await route53Records()).toEqual(before);
    expect(await paused('files')).toBe(false);
    expect(readHostFile('h5', 'release.txt')).toBe('v1');
  });

  it('complex release, approved: standby restored and deployed, DNS swapped, roles swapped, embargo lifted, schedules back on', async () => {
    expect(await route53Records()).toEqual(addressesOf('hk'));
    // Its history is recorded for the replay test, which replays under the file's name: child ids derive from it.
    const handle = await start({ release: 'v2', standbyRegion: 'eu-west-3', validation: { approvers: ['alice'], quorum: 1, timeout: '1h' } }, 'hotStandbyRelease-approved');
    const s = await waitForGate(handle, 'validation');
    expect(s.gates.find((g) => g.id === 'validation')?.prompt).toContain(`on the standby eu (eu-west-3): http://127.0.0.1:`);
    // Waiting at the gate: production under embargo and in maintenance, schedules paused, the standby restored.
    expect((await roles()).embargo).toMatchObject({ infrastructure: 'hk', owner: 'carol', workflowId: handle.workflowId });
    expect(existsSync(hostFile('h5', 'maintenance'))).toBe(true);
    expect(await paused('files')).toBe(true);
    expect(await paused('database')).toBe(true);
    expect((await pg.eu.query('gigadb', 'SELECT count(*)::int AS n FROM datasets'))[0].n).toBe(5000);
    expect((await pg.eu.query('gigadb', 'SELECT count(*)::int AS n FROM files'))[0].n).toBe(20000);
    expect(readHostFile('h6', 'release.txt')).toBe('v2');
    expect(readHostFile('h5', 'release.txt')).toBe('v1');

    // Another run against production meanwhile is refused, naming the embargo and its owner; nothing runs.
    const intruder = await env.client.workflow.start('fleetRun', { taskQueue: queue, workflowId: unique('intruder'), args: [{ environment: 'hk', target: { hosts: ['web'] }, command: ['touch', 'intruder-was-here'] }] });
    const refused = await failureOf(intruder);
    expect(refused.type).toBe('Embargoed');
    expect(refused.message).toMatch(/change embargo held by carol \(run hotStandbyRelease-approved,/);
    expect(readHostFile('h5', 'intruder-was-here')).toBeUndefined();

    await handle.executeUpdate('approve', { args: [{ by: 'alice' }] });
    const result = await handle.result();
    expect(result).toMatchObject({ production: 'eu', standby: 'hk', release: 'v2' });
    expect(result.backupKey).toMatch(/^\d{12}$/);
    expect(await route53Records()).toEqual(addressesOf('eu'));
    expect(result.dns?.after).toEqual(addressesOf('eu'));
    expect(result.dns?.before).toEqual(addressesOf('hk'));
    const r = await roles();
    expect(r).toMatchObject({ production: 'eu', standby: 'hk', releases: { eu: 'v2', hk: 'v2' } });
    expect(r.embargo).toBeUndefined();
    expect(existsSync(hostFile('h5', 'maintenance'))).toBe(false);
    expect(await paused('files')).toBe(false);
    expect(await paused('database')).toBe(false);
    expect(readHostFile('h5', 'release.txt')).toBe('v2');
    recordHistory(handle, 'hotStandbyRelease-approved');
  });

  it('rejected at validation: DNS exactly as before, roles unchanged, embargo lifted, schedules resumed', async () => {
    const before = await route53Records();
    const rolesBefore = await roles();
    const handle = await start({ release: 'v3' });
    await waitForGate(handle, 'validation');
    await handle.executeUpdate('reject', { args: [{ by: 'dave', reason: 'search page broken' }] });
    const f = await failureOf(handle);
    expect(f.type).toBe('Rejected');
    expect(f.message).toMatch(/rejected by dave: search page broken/);
    await expectAsBefore(before, rolesBefore);
  });

  it('cancelled at validation: DNS and roles as before, embargo lifted, schedules resumed, maintenance off; the run ends Canceled', async () => {
    const before = await route53Records();
    const rolesBefore = await roles();
    const production = INFRA[rolesBefore.production as Infra].host;
    const handle = await start({ release: 'v3c' });
    await waitForGate(handle, 'validation');
    expect(existsSync(hostFile(production, 'maintenance'))).toBe(true);
    expect(await paused('files')).toBe(true);
    await handle.cancel();
    const s = await cancelledRun(handle);
    expect(s.undo?.putBack).toEqual(['resume schedules', `maintenance off on ${rolesBefore.production}`, 'lift embargo']);
    await expectAsBefore(before, rolesBefore);
  });

  it('cancelled after the DNS swap: the records back at Route53, roles as before, everything else restored; a second cancel does not stop the undo', async () => {
    const before = await route53Records();
    const rolesBefore = await roles();
    const standby = rolesBefore.standby as Infra;
    const handle = await start({ release: 'v3d', sanityTimeout: '10m' });
    await waitForGate(handle, 'validation');
    // The standby passed its checks before validation; broken now, the sanity check after the swap keeps polling.
    rmSync(hostFile(INFRA[standby].host, 'healthy'));
    try {
      await handle.executeUpdate('approve', { args: [{ by: 'alice' }] });
      await waitFor(async () => (await status(handle)).steps.some((x) => x.name === `sanity check ${standby}` && x.state === 'running'), 'the sanity check after the swap', 60_000);
      expect(await route53Records()).toEqual(addressesOf(standby));
      await handle.cancel();
      // Maintenance off takes a while (the inventory's command sleeps): cancel again while it runs.
      await waitFor(async () => (await status(handle)).steps.some((x) => /maintenance off/.test(x.name) && x.state === 'running'), 'the undo to be under way', 60_000, 20);
      await handle.cancel();
      const s = await cancelledRun(handle);
      expect(s.undo?.putBack).toEqual(['DNS back to the previous records', 'resume schedules', `maintenance off on ${rolesBefore.production}`, 'lift embargo']);
    } finally {
      asHostFile(INFRA[standby].host, 'healthy', 'ok\n');
    }
    await expectAsBefore(before, rolesBefore);
  });

  it('cancelled after the roles swapped: the release stands, and the embargo, maintenance and schedules are let go', async () => {
    const r = await roles();
    const [oldProduction, newProduction] = [r.production as Infra, r.standby as Infra];
    const handle = await start({ release: 'v3e', sanityTimeout: '10m' });
    await waitForGate(handle, 'validation');
    // The old production, the new standby once swapped, fails its check after its deploy: the run waits there.
    rmSync(hostFile(INFRA[oldProduction].host, 'healthy'));
    try {
      await handle.executeUpdate('approve', { args: [{ by: 'alice' }] });
      await waitFor(async () => (await status(handle)).steps.some((x) => x.name === `check ${oldProduction}` && x.state === 'running'), 'the new standby\'s check', 60_000);
      await handle.cancel();
      const s = await cancelledRun(handle);
      expect(s.undo?.putBack).toEqual(['resume schedules', `maintenance off on ${oldProduction}`, 'lift embargo']);
    } finally {
      asHostFile(INFRA[oldProduction].host, 'healthy', 'ok\n');
    }
    expect(await route53Records()).toEqual(addressesOf(newProduction));
    const after = await roles();
    expect([after.production, after.standby, after.embargo]).toEqual([newProduction, oldProduction, undefined]);
    expect(await paused('files')).toBe(false);
    expect(await paused('database')).toBe(false);
    expect(existsSync(hostFile(INFRA[oldProduction].host, 'maintenance'))).toBe(false);
  });

  it('a truncated backup stops the release before anything is deployed; the standby keeps its data', async () => {
    const r = await roles();
    const standby = r.standby as Infra;
    const key = '202611210930';
    await env.client.workflow.execute('backupDatabase', { taskQueue: queue, workflowId: unique('backup'), args: [{ system: 'gigadb', key, manual: true, failure: { onFailure: 'fail' } }] });
    const s3 = awsClient(S3Client, INFRA.hk.region);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'gigadb-backups' }));
    const object = (listed.Contents ?? []).map((o) => o.Key as string).find((k) => k.endsWith(`${key}.dump`)) as string;
    const dump = Buffer.from(await ((await s3.send(new GetObjectCommand({ Bucket: 'gigadb-backups', Key: object }))).Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    await s3.send(new PutObjectCommand({ Bucket: 'gigadb-backups', Key: object, Body: dump.subarray(0, dump.length >> 1) }));
    await pg[standby].query('gigadb', "INSERT INTO datasets (title) VALUES ('written on the standby')");
    const rowsBefore = (await pg[standby].query('gigadb', 'SELECT count(*)::int AS n FROM datasets'))[0].n;
    const dnsBefore = await route53Records();
    const releaseBefore = readHostFile(INFRA[standby].host, 'release.txt');

    const f = await failureOf(await start({ release: 'v-corrupt', backupKey: key }));
    expect(f.type).toBe('BackupCorrupt');
    // The restore made its new database while the backup ran; its undo dropped it.
    expect(f.message).toContain('the live database was not touched');
    expect((await pg[standby].query('postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'gigadb%' ORDER BY 1")).map((d) => d.datname)).toEqual(['gigadb']);
    expect((await pg[standby].query('gigadb', 'SELECT count(*)::int AS n FROM datasets'))[0].n).toBe(rowsBefore);
    expect(readHostFile(INFRA[standby].host, 'release.txt')).toBe(releaseBefore);
    expect(await route53Records()).toEqual(dnsBefore);
    expect((await roles()).embargo).toBeUndefined();
    expect(await paused('database')).toBe(false);
  });

  it('a failed sanity check after the swap puts the Cloudflare records back exactly; roles unchanged', async () => {
    const before = cf.records();
    const rolesBefore = await readRolesOf('gigadb-cf');
    const handle = await start({ system: 'gigadb-cf', release: 'v4', sanityTimeout: '3s' });
    await waitForGate(handle, 'validation');
    // The standby passed its checks before validation; it breaks before the swap's sanity check.
    const standbyHost = INFRA[rolesBefore.standby as Infra].host;
    rmSync(hostFile(standbyHost, 'healthy'));
    try {
      await handle.executeUpdate('approve', { args: [{ by: 'alice' }] });
      const f = await failureOf(handle);
      expect(f.message).toMatch(/healthy/);
      const s = await status(handle);
      expect(s.steps.map((x) => `${x.name}:${x.state}`)).toEqual(expect.arrayContaining(['swap DNS:succeeded', 'undo: DNS back to the previous records:compensated']));
      // The swap happened (one batch), then the exact previous records came back.
      expect(cf.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/dns_records/batch'))).toHaveLength(2);
      expect(cf.records().map(({ name, content }) => `${name}=${content}`).sort()).toEqual(before.map(({ name, content }) => `${name}=${content}`).sort());
      const after = await readRolesOf('gigadb-cf');
      expect([after.production, after.standby]).toEqual([rolesBefore.production, rolesBefore.standby]);
      expect(after.embargo).toBeUndefined();
    } finally {
      asHostFile(standbyHost, 'healthy', 'ok\n');
    }
  });

  it('worker killed during the swap: the records end fully swapped, never half', async () => {
    await worker?.stop();
    worker = undefined;
    // The spawned workers inherit the credentials' variables from this process.
    let child = spawnWorker(inventoryFile, queue);
    try {
      const before = await route53Records();
      // Queries need a worker: wait for the spawned one to poll.
      const from = (await waitFor(() => roles().catch(() => undefined), 'the spawned worker', 120_000, 500)).production as Infra;
      const to: Infra = from === 'hk' ? 'eu' : 'hk';
      expect(before).toEqual(addressesOf(from));
      const handle = await start({ release: 'v5' });
      await waitForGate(handle, 'validation');
      // Sample the records all along: each sample must be wholly the old set or wholly the new.
      const seen = new Set<string>();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const r = await route53Records();
          seen.add(JSON.stringify(r) === JSON.stringify(addressesOf(from)) ? 'old' : JSON.stringify(r) === JSON.stringify(addressesOf(to)) ? 'new' : `half:${JSON.stringify(r)}`);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      await handle.executeUpdate('approve', { args: [{ by: 'alice' }] });
      await waitFor(async () => (await status(handle)).steps.some((x) => x.name === 'swap DNS'), 'the swap to start', 60_000, 20);
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      child = spawnWorker(inventoryFile, queue);
      const result = await handle.result();
      sampling = false;
      await sampler;
      expect(result.production).toBe(to);
      expect(await route53Records()).toEqual(addressesOf(to));
      expect([...seen].filter((x) => x.startsWith('half'))).toEqual([]);
      expect((await roles()).production).toBe(to);
    } finally {
      child.kill('SIGKILL');
      worker = await startWorker(env, inventoryFile, queue);
    }
  });

  it('opsflow roles prints the registry: roles, releases, regions, embargo', async () => {
    const r = await roles();
    const out = await runOpsflow(['roles', 'gigadb', '--inventory', inventoryFile]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`production\\s+${r.production}\\s+${INFRA[r.production as Infra].region}\\s+v5`));
    expect(out.stdout).toMatch(new RegExp(`standby\\s+${r.standby}\\s+${INFRA[r.standby as Infra].region}`));
    expect(out.stdout).toContain('no change embargo');
    const json = await runOpsflow(['roles', 'gigadb', '--inventory', inventoryFile, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ system: 'gigadb', production: r.production, standby: r.standby });
    // An unknown system is a usage mistake: exit 2, naming the systems there are.
    const fresh = await runOpsflow(['roles', 'gigadb-never', '--inventory', inventoryFile]);
    expect(fresh.code).toBe(2);
    expect(fresh.stderr).toContain('unknown system "gigadb-never" (the inventory has: gigadb, gigadb-cf, gigadb-bg)');
  });

  it('simple release: standby first, then production; no swap; both releases recorded', async () => {
    const before = await route53Records();
    const r0 = await roles();
    const handle = await start({ kind: 'simple', release: 'v6' });
    const result = await handle.result();
    expect(result).toMatchObject({ kind: 'simple', production: r0.production, standby: r0.standby });
    const s = await status(handle);
    const deploys = s.steps.filter((x) => x.name.startsWith('deploy v6')).map((x) => x.name);
    expect(deploys).toEqual([`deploy v6 to ${r0.standby}`, `deploy v6 to ${r0.production}`]);
    expect(await route53Records()).toEqual(before);
    expect((await roles()).releases).toMatchObject({ hk: 'v6', eu: 'v6' });
  });
  it('simple release through child blueGreenDeploy runs, as the inventory declares: standby first, then production', async () => {
    const handle = await start({ system: 'gigadb-bg', kind: 'simple', release: 'r2' });
    const result = await handle.result();
    expect(result).toMatchObject({ kind: 'simple', production: 'hk', standby: 'eu' });
    for (const i of Object.keys(INFRA) as Infra[]) {
      const res = await fetch(`http://${fleet().hosts.find((h) => h.name === INFRA[i].host)?.address}:${appPort[i]}/`);
      expect(await res.text()).toBe('r2');
    }
    for (const i of ['eu', 'hk']) {
      const child = await env.client.workflow.getHandle(`${handle.workflowId}/deploy-${i}`).describe();
      expect([child.type, child.status.name]).toEqual(['blueGreenDeploy', 'COMPLETED']);
    }
    expect((await readRolesOf('gigadb-bg')).releases).toEqual({ eu: 'r2', hk: 'r2' });
  });
});

/** The registry, or the inventory's roles before any run has started it. */
async function readRolesOf(system: string): Promise<RolesState> {
  try {
    return await env.client.workflow.getHandle(rolesWorkflowId(system)).query(rolesQuery);
  } catch (err) {
    if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
    return { system, production: 'hk', standby: 'eu', releases: {}, changes: [] };
  }
}
