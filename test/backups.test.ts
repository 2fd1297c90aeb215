// Database sync, backup, restore and pruning against two real PostgreSQL servers and moto_server's S3: a round trip
// of 300,000 rows; a truncated and a corrupted backup refused with the live database untouched; a worker
// SIGKILLed in the middle of a restore, after which the standby holds the old data or the new, never a mix;
// retention that spares a backup a running restore holds.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, CopyObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupManifest } from '../src/activities/backups';
import { backupKeyFor, backupKeyKind, expiredKeys } from '../src/schemas/backupKey';
import type { RunStatus } from '../src/runbook/protocol';
import { writeDataInventory } from './support/data';
import { cancelledRun, failureOf, recordHistory, spawnWorker, startWorker, testEnv, unique, waitFor } from './support/harness';
import { startMoto, type TestMoto } from './support/moto';
import { startPostgres, type TestPostgres } from './support/postgres';
import { postgresBinDir } from '../src/sandbox/postgres';

let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
let moto: TestMoto;
let blue: TestPostgres;
let green: TestPostgres;
let s3: S3Client;
let inventory: string;
const queue = unique('backups');
const BUCKET = 'opsflow-sync-test';
const PREFIX = 'nightly/dbsys/';
const SYSTEM = 'dbsys';
const ROWS = { dataset: 200_000, file: 100_000, author: 500 };

const sql = (pg: TestPostgres, q: string) => pg.query('gigadb', q);
/** Per table: row count and an md5 over every row in key order. */
async function fingerprint(pg: TestPostgres): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of Object.keys(ROWS)) {
    const [r] = await sql(pg, `SELECT count(*)::text AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) AS h FROM ${t} t`);
    out[t] = `${r.n}:${r.h}`;
  }
  return out;
}

async function seedProduction(): Promise<void> {
  await blue.query('postgres', 'CREATE DATABASE gigadb');
  await sql(blue, `CREATE TABLE author (id int PRIMARY KEY, name text NOT NULL)`);
  await sql(blue, `CREATE TABLE dataset (id int PRIMARY KEY, doi text NOT NULL, title text, author_id int REFERENCES author, size bigint, created timestamptz)`);
  await sql(blue, `CREATE TABLE file (id int PRIMARY KEY, dataset_id int REFERENCES dataset, path text, md5 text)`);
  await sql(blue, `INSERT INTO author SELECT g, 'author ' || g FROM generate_series(1, ${ROWS.author}) g`);
  await sql(blue, `INSERT INTO dataset SELECT g, '10.5524/' || (100000 + g), repeat('title ', 1 + g % 7) || g, 1 + g % ${ROWS.author}, g * 1024, timestamptz '2020-01-01' + g * interval '1 minute' FROM generate_series(1, ${ROWS.dataset}) g`);
  await sql(blue, `INSERT INTO file SELECT g, 1 + g % ${ROWS.dataset}, '/pub/' || g || '/data.csv', md5(g::text) FROM generate_series(1, ${ROWS.file}) g`);
}

/** The standby's previous state: the same schema, older and fewer rows. */
async function resetStandby(): Promise<void> {
  for (const db of ['gigadb', 'gigadb_opsflow_new', 'gigadb_opsflow_old']) await green.query('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await green.query('postgres', 'CREATE DATABASE gigadb');
  await sql(green, `CREATE TABLE author (id int PRIMARY KEY, name text NOT NULL)`);
  await sql(green, `CREATE TABLE dataset (id int PRIMARY KEY, doi text NOT NULL, title text, author_id int, size bigint, created timestamptz)`);
  await sql(green, `CREATE TABLE file (id int PRIMARY KEY, dataset_id int, path text, md5 text)`);
  await sql(green, `INSERT INTO author SELECT g, 'old author ' || g FROM generate_series(1, 10) g`);
  await sql(green, `INSERT INTO dataset SELECT g, 'old ' || g, 'old', 1, 0, now() FROM generate_series(1, 1000) g`);
}

const databasesOn = async (pg: TestPostgres) => (await pg.query<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname LIKE 'gigadb%' ORDER BY 1`)).map((r) => r.datname);
const manifest = async (key: string) => JSON.parse(await ((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}${key}.json` }))).Body as { transformToString(): Promise<string> }).transformToString()) as BackupManifest;
const today = () => backupKeyFor(new Date(), 'Europe/London', 'scheduled');
/** Production's pg_dump and psql processes (the worker runs them on this machine). */
const productionTools = () => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => /(^|\/)(pg_dump|psql) /.test(l) && l.includes(` ${blue.port} `));

/** An exclusive lock on production's `author` table, which a dump and a row count wait for, held until released. */
async function lockAuthor(): Promise<{ release(): Promise<void> }> {
  const lock = new Client({ host: blue.host, port: blue.port, user: blue.user, password: blue.password, database: 'gigadb' });
  await lock.connect();
  try {
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE author IN ACCESS EXCLUSIVE MODE');
  } catch (err) {
    await lock.end();
    throw err;
  }
  return { release: () => lock.end() };
}

beforeAll(async () => {
  env = await testEnv();
  [moto, blue, green] = await Promise.all([startMoto(), startPostgres(), startPostgres()]);
  process.env.SYNC_TEST_AWS_KEY = moto.credentials.accessKeyId;
  process.env.SYNC_TEST_AWS_SECRET = moto.credentials.secretAccessKey;
  process.env.SYNC_TEST_PG_BLUE = blue.password;
  process.env.SYNC_TEST_PG_GREEN = green.password;
  s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: moto.credentials });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await Promise.all([seedProduction(), resetStandby()]);
  const db = (pg: TestPostgres, passwordEnv: string, extra: Record<string, unknown> = {}) => ({ host: pg.host, port: pg.port, database: 'gigadb', user: pg.user, passwordEnv, ...extra });
  inventory = writeDataInventory({
    aws: { s3test: { region: 'us-east-1', accessKeyIdEnv: 'SYNC_TEST_AWS_KEY', secretAccessKeyEnv: 'SYNC_TEST_AWS_SECRET', endpoint: moto.endpoint } },
    databases: {
      // Production's tools from PostgreSQL's own directory (`bin`), the standby's through PATH (Debian's wrapper).
      'blue-db': db(blue, 'SYNC_TEST_PG_BLUE', { bin: postgresBinDir() }),
      'blue-nobin': db(blue, 'SYNC_TEST_PG_BLUE', { bin: '/opt/no-postgresql/bin' }),
      // The standby's tools run on a fleet host over SSH, the password reaching them through stdin.
      'green-db': db(green, 'SYNC_TEST_PG_GREEN', {
        runOn: { environment: 'test', host: 'h3' },
        checks: [
          { name: 'datasets', sql: 'SELECT count(*) FROM dataset', expect: String(ROWS.dataset) },
          { name: 'latest-doi', sql: 'SELECT max(doi) FROM dataset;' },
        ],
      }),
    },
    systems: {
      [SYSTEM]: {
        timezone: 'Europe/London',
        infrastructures: { blue: { aws: 's3test', environment: 'test', database: 'blue-db' }, green: { aws: 's3test', environment: 'test', database: 'green-db' } },
        roles: { production: 'blue', standby: 'green' },
        backups: { account: 's3test', bucket: BUCKET, prefix: 'nightly', retention: { days: 3, keep: 2 } },
      },
      // Its tools' directory does not exist.
      nobin: {
        infrastructures: { blue: { aws: 's3test', database: 'blue-nobin' }, green: { aws: 's3test', database: 'green-db' } },
        roles: { production: 'blue', standby: 'green' },
        backups: { account: 's3test', bucket: BUCKET, prefix: 'nobin' },
      },
      samedb: {
        infrastructures: { blue: { aws: 's3test', database: 'blue-db' }, green: { aws: 's3test', database: 'blue-db' } },
        roles: { production: 'blue', standby: 'green' },
        backups: { account: 's3test', bucket: BUCKET },
      },
    },
  });
  worker = await startWorker(env, inventory, queue);
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  moto?.stop();
  blue?.stop();
  green?.stop();
});

function start(workflow: string, input: Record<string, unknown>, taskQueue = queue, workflowId = unique(workflow)): Promise<WorkflowHandle> {
  return env.client.workflow.start(workflow, { taskQueue, workflowId, args: [{ system: SYSTEM, ...input }] });
}

describe('backup keys', () => {
  it('are YYYYMMDD (scheduled) or YYYYMMDDHHMM (manual), real dates and times only', () => {
    expect(['20240229', '202402292359', '20261122', '202611220000'].map(backupKeyKind)).toEqual(['scheduled', 'manual', 'scheduled', 'manual']);
    for (const bad of ['20230229', '20261131', '202611222400', '202611221260', '2026112', '2026112212', 'latest', '19991231']) expect(backupKeyKind(bad)).toBeUndefined();
  });

  it('take the wall clock of the system time zone, across a DST change', () => {
    // 01:30 UTC on the morning London moves to summer time is 02:30 BST; Hong Kong is already on the next day.
    const t = new Date('2026-03-29T01:30:00Z');
    expect(backupKeyFor(t, 'Europe/London', 'manual')).toBe('202603290230');
    expect(backupKeyFor(new Date('2026-03-28T20:00:00Z'), 'Asia/Hong_Kong', 'scheduled')).toBe('20260329');
  });

  it('expire after the retention days, the newest `keep` kept whatever their age', () => {
    const now = new Date('2026-11-22T12:00:00Z');
    const keys = ['20261010', '20261020', '202610201530', '20261101', '20261121', '20261122'];
    expect(expiredKeys(keys, now, 'UTC', { days: 30, keep: 2 })).toEqual(['202610201530', '20261020', '20261010']);
    expect(expiredKeys(keys, now, 'UTC', { days: 30, keep: 5 })).toEqual(['20261010']);
    expect(expiredKeys(['20200101', '20200102'], now, 'UTC', { days: 1, keep: 7 })).toEqual([]);
  });
});

describe('database sync through S3', () => {
  it('backs production up and restores it on the standby: 300,000 rows, verified, swapped in whole', async () => {
    const before = await fingerprint(green);
    // Named as its recorded history: the replay test replays it under that id, and the children's ids derive from it.
    const h = await start('dataSync', { stores: ['database'], failure: { onFailure: 'fail' } }, queue, 'dataSync-database');
    const r = await h.result();
    const key = today();
    expect(r.key).toBe(key);
    expect(r.plan).toMatchObject({ from: 'blue', to: 'green', database: { to: { runsOn: 'test/h3' } } });
    expect(r.database.backup.backup).toMatchObject({ key, reused: false, tables: 3, rows: ROWS.dataset + ROWS.file + ROWS.author });
    expect(r.database.restore.verified).toMatchObject({ tables: 3, rows: ROWS.dataset + ROWS.file + ROWS.author, checks: [{ name: 'datasets', ok: true }, { name: 'latest-doi', ok: true, value: '10.5524/300000' }] });
    expect(await fingerprint(green)).toEqual(await fingerprint(blue));
    expect(await fingerprint(green)).not.toEqual(before);
    expect(await databasesOn(green)).toEqual(['gigadb']);
    const [{ comment }] = await green.query<{ comment: string }>('postgres', `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = 'gigadb'`);
    expect(comment).toContain(`opsflow restore of ${SYSTEM} backup ${key}`);

    const m = await manifest(key);
    expect(m).toMatchObject({ key, kind: 'scheduled', infrastructure: 'blue', database: 'gigadb', tables: { 'public.dataset': ROWS.dataset, 'public.file': ROWS.file, 'public.author': ROWS.author } });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}${key}.dump` }));
    expect(head.ContentLength).toBe(m.size);
    expect(head.ETag).toBe(m.etag);
    expect(head.Metadata).toMatchObject({ key, database: 'gigadb' });
    // At the default dumpCompression, gzip level 1 (pg_dump's own default, -1, is level 6).
    const dumpFile = path.join(mkdtempSync(path.join(tmpdir(), 'opsflow-dump-')), `${key}.dump`);
    writeFileSync(dumpFile, await ((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}${key}.dump` }))).Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    expect(execFileSync('pg_restore', ['-l', dumpFile], { encoding: 'utf8' })).toMatch(/^;\s+Compression: 1$/m);
    expect(r.database.backup.backup.sha256).toBe(m.sha256);
    recordHistory(h, 'dataSync-database');
    // The restore started with the backup and made its new database meanwhile, then waited for the backup.
    const restoreRun = env.client.workflow.getHandle(`${h.workflowId}/restore-${key}`);
    recordHistory(restoreRun, 'restoreDatabase-after-backup');
    const events = (await h.fetchHistory()).events ?? [];
    const at = (what: (e: (typeof events)[number]) => unknown) => events.findIndex(what);
    expect(at((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId === restoreRun.workflowId)).toBeLessThan(at((e) => e.childWorkflowExecutionCompletedEventAttributes?.workflowExecution?.workflowId === `${h.workflowId}/backup-${key}`));
    const restoreSteps = (await restoreRun.query<RunStatus>('status')).steps.map((st) => `${st.name}: ${st.state}`);
    expect(restoreSteps).toEqual([
      'plan: succeeded',
      `lease backup ${key}: succeeded`,
      'create the new database beside gigadb: succeeded',
      `wait for backup ${key}: succeeded`,
      `download, check and restore ${key} beside gigadb: succeeded`,
      'verify row counts and checks: succeeded',
      'swap it in as gigadb: succeeded',
      `release backup ${key}: succeeded`,
    ]);
    // The passwords reach the tools through their environment: never in a run's history.
    for (const id of [h.workflowId, `${h.workflowId}/backup-${key}`, `${h.workflowId}/restore-${key}`]) {
      const history = JSON.stringify(await env.client.workflow.getHandle(id).fetchHistory());
      for (const secret of [blue.password, green.password]) expect(history).not.toContain(secret);
    }

    // The day's key is reused: a second run the same day restores the same backup without dumping again.
    const again = await (await start('dataSync', { stores: ['database'], failure: { onFailure: 'fail' } })).result();
    expect(again.database.backup.backup).toMatchObject({ key, reused: true, sha256: m.sha256 });
  });

  it('refuses a truncated backup before touching the standby, and a corrupted one with the live database untouched and nothing left beside it', async () => {
    await resetStandby();
    const before = await fingerprint(green);
    const backupRun = await start('backupDatabase', { manual: true, failure: { onFailure: 'fail' } });
    const backup = await backupRun.result();
    recordHistory(backupRun, 'backupDatabase-manual');
    expect(backup.key).toMatch(/^\d{12}$/);
    const object = `${PREFIX}${backup.key}.dump`;
    const original = Buffer.from(await ((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: object }))).Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());

    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: object, Body: original.subarray(0, Math.floor(original.length / 2)) }));
    const truncated = await failureOf(await start('restoreDatabase', { key: backup.key, failure: { onFailure: 'fail' } }));
    expect(truncated.type).toBe('BackupCorrupt');
    expect(truncated.message).toContain(`the backup recorded ${original.length}`);
    expect(truncated.message).toContain('the standby was not touched');

    // The same size, one byte changed: the object's ETag is not the one the backup recorded.
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: object, Body: flipped }));
    const rewritten = await failureOf(await start('restoreDatabase', { key: backup.key, failure: { onFailure: 'fail' } }));
    expect(rewritten.type).toBe('BackupCorrupt');
    expect(rewritten.message).toContain('it was written again since the backup (ETag');
    expect(rewritten.message).toContain('the standby was not touched');

    // A manifest from before ETags were recorded: the sha256 of the bytes as they stream into pg_restore catches it.
    const m = await manifest(backup.key);
    const manifestKey = `${PREFIX}${backup.key}.json`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: manifestKey, Body: JSON.stringify({ ...m, etag: undefined }) }));
    const corrupted = await failureOf(await start('restoreDatabase', { key: backup.key, failure: { onFailure: 'fail' } }));
    expect(corrupted.type).toBe('BackupCorrupt');
    expect(corrupted.message).toMatch(/its sha256 is [0-9a-f]{64}, the backup recorded/);
    expect(corrupted.message).toContain('the live database was not touched');

    expect(await fingerprint(green)).toEqual(before);
    expect(await databasesOn(green)).toEqual(['gigadb']);
    const { ETag } = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: object, Body: original }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: manifestKey, Body: JSON.stringify({ ...m, etag: ETag }) }));
  });

  it('refuses a restore whose row counts are not the backup\'s: never swapped in, the live database untouched, nothing left beside it', async () => {
    await resetStandby();
    const before = await fingerprint(green);
    const key = today();
    const manifestKey = `${PREFIX}${key}.json`;
    const m = await manifest(key);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: manifestKey, Body: JSON.stringify({ ...m, tables: { ...m.tables, 'public.author': ROWS.author + 1 } }) }));
    try {
      const refused = await failureOf(await start('restoreDatabase', { key, failure: { onFailure: 'fail' } }));
      expect(refused.type).toBe('VerifyFailed');
      expect(refused.message).toContain(`public.author: ${ROWS.author} rows, the backup has ${ROWS.author + 1}`);
      expect(refused.message).toContain('the live database was not touched');
      expect(await fingerprint(green)).toEqual(before);
      expect(await databasesOn(green)).toEqual(['gigadb']);
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: manifestKey, Body: JSON.stringify(m) }));
    }
  });

  it('never restores onto production, nor onto a standby that is the same database', async () => {
    const toProduction = await failureOf(await start('restoreDatabase', { key: today(), to: 'blue' }));
    expect(toProduction.type).toBe('DestinationIsProduction');
    const sync = await failureOf(await start('dataSync', { stores: ['database'], to: 'blue' }));
    expect(sync.type).toBe('DestinationIsProduction');
    const same = await failureOf(await start('dataSync', { system: 'samedb', stores: ['database'] }));
    expect(same).toMatchObject({ type: 'Misconfigured', message: expect.stringContaining('name the same database') });
    for (const key of ['2026112', '20261131', '202611212460', 'latest']) {
      const bad = await failureOf(await start('restoreDatabase', { key }));
      expect(bad.type).toBe('InvalidInput');
      expect(bad.message).toContain('key: a backup key: YYYYMMDD (scheduled) or YYYYMMDDHHMM (manual)');
    }
    // Only a parent run sends the signal such a restore waits for.
    const waiting = await failureOf(await start('restoreDatabase', { key: today(), afterBackup: true }));
    expect(waiting).toMatchObject({ type: 'InvalidInput', message: expect.stringContaining('afterBackup: only for a restore started by another run (dataSync)') });
    // The tools come from the database's `bin` when it names one.
    expect(await failureOf(await start('backupDatabase', { system: 'nobin', manual: true, failure: { onFailure: 'fail' } }))).toMatchObject({ type: 'ToolMissing', message: expect.stringContaining('/opt/no-postgresql/bin/psql') });
    const manualKey = await failureOf(await start('backupDatabase', { key: '20261121', manual: true }));
    expect(manualKey.message).toContain('key: a manual backup is keyed YYYYMMDDHHMM');
  });

  it('a worker killed in the middle of a restore: the standby is the old data until the swap, then all of the new', async () => {
    await resetStandby();
    const old = await fingerprint(green);
    const killQueue = unique('restore-kill');
    const first = spawnWorker(inventory, killQueue);
    let second: ReturnType<typeof spawnWorker> | undefined;
    try {
      // Through dataSync (today's backup, already made, is reused): its restore goes into the database made beside
      // the backup, and the retry after the kill must not take that part-filled database for the empty one.
      const key = today();
      const sync = await start('dataSync', { stores: ['database'], failure: { onFailure: 'fail' } }, killQueue);
      const h = env.client.workflow.getHandle(`${sync.workflowId}/restore-${key}`);
      // Mid-restore: the new database exists beside the live one and pg_restore is filling it.
      await waitFor(async () => (await green.query('postgres', `SELECT 1 FROM pg_database WHERE datname = 'gigadb_opsflow_new'`)).length > 0 && (await green.query('gigadb_opsflow_new', `SELECT 1 FROM pg_class WHERE relname = 'dataset'`)).length > 0, 'pg_restore to start', 90_000, 20);
      first.kill('SIGKILL');
      await new Promise((resolve) => first.once('exit', resolve));
      expect(await fingerprint(green)).toEqual(old);
      second = spawnWorker(inventory, killQueue);
      const r = (await sync.result()).database.restore;
      expect(r.verified.rows).toBe(ROWS.dataset + ROWS.file + ROWS.author);
      expect(await fingerprint(green)).toEqual(await fingerprint(blue));
      expect(await databasesOn(green)).toEqual(['gigadb']);
      const history = await h.fetchHistory();
      const attempts = history.events?.filter((e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.attempt && e.activityTaskStartedEventAttributes.attempt > 1) ?? [];
      expect(attempts.length).toBeGreaterThan(0);
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
    }
  });

  it('a sync cancelled, or a backup failed, while its restore waits for the backup: the restore undoes its new database, the standby keeps its data', async () => {
    await resetStandby();
    const old = await fingerprint(green);
    // A lock the dump must wait for keeps the backup running until the test has looked.
    const lock = await lockAuthor();
    try {
      const waiting = async (key: string) => {
        const sync = await start('dataSync', { stores: ['database'], key, failure: { onFailure: 'fail' } });
        const restore = env.client.workflow.getHandle(`${sync.workflowId}/restore-${key}`);
        await waitFor(async () => (await restore.query<RunStatus>('status')).steps.find((st) => st.name === `wait for backup ${key}` && st.state === 'running'), 'the restore to wait for the backup', 60_000);
        expect(await databasesOn(green)).toEqual(['gigadb', 'gigadb_opsflow_new']);
        return { sync, restore, backup: env.client.workflow.getHandle(`${sync.workflowId}/backup-${key}`) };
      };
      const undone = (key: string) => ({ state: 'cancelled', undo: { why: 'cancelled', putBack: ['drop the restored database', `release backup ${key}`], notPutBack: [] } });

      const cancelled = await waiting('20200201');
      await cancelled.sync.cancel();
      await cancelledRun(cancelled.sync);
      expect(await cancelled.restore.query<RunStatus>('status')).toMatchObject(undone('20200201'));
      expect(await databasesOn(green)).toEqual(['gigadb']);

      const failed = await waiting('20200202');
      await failed.backup.terminate('the backup fails');
      expect((await failureOf(failed.sync)).message).toBe(`backupDatabase run ${failed.backup.workflowId} was terminated`);
      expect((await failed.restore.describe()).status.name).toBe('CANCELLED');
      expect(await failed.restore.query<RunStatus>('status')).toMatchObject(undone('20200202'));
      expect(await databasesOn(green)).toEqual(['gigadb']);
      // The backups' pg_dump and psql learn of their runs' end at their next heartbeat, and stop: once they have,
      // releasing the lock lets nothing through.
      await waitFor(() => productionTools().length === 0, 'the stopped backups to stop their tools', 60_000);
    } finally {
      await lock.release();
    }
    expect(await fingerprint(green)).toEqual(old);
    for (const key of ['20200201', '20200202']) {
      const left = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}leases/${key}/` }));
      expect(left.Contents ?? []).toEqual([]);
      expect((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}${key}.json` }))).Contents ?? []).toEqual([]);
    }
  });

  it("a backup whose row count fails stops its dump at once, and reports the count's error", async () => {
    // Both will wait for the lock: the count in the snapshot's session, and pg_dump.
    const lock = await lockAuthor();
    try {
      // A key of its own: one backed up already would be reused, not dumped.
      const h = await start('backupDatabase', { key: '202002030000', manual: true, failure: { onFailure: 'fail' } });
      const counting = async () => (await blue.query<{ pid: number }>('postgres', `SELECT pid FROM pg_stat_activity WHERE datname = 'gigadb' AND query LIKE '%count(*)%' AND wait_event_type = 'Lock'`))[0];
      const { pid } = await waitFor(async () => (productionTools().some((l) => l.includes('pg_dump')) ? counting() : undefined), 'the count and the dump to wait for the lock', 60_000);
      await blue.query('postgres', `SELECT pg_terminate_backend(${pid})`);
      await waitFor(() => !productionTools().some((l) => l.includes('pg_dump')), 'pg_dump to be stopped', 10_000);
      const failure = await waitFor(async () => (await h.describe()).raw.pendingActivities?.[0]?.lastFailure?.message, 'the attempt to fail', 30_000);
      expect(failure).toContain('psql on gigadb');
      expect(failure).toContain('terminating connection due to administrator command');
      await h.terminate('test over');
      await waitFor(() => productionTools().length === 0, 'the stopped backup to stop its tools', 60_000);
    } finally {
      await lock.release();
    }
  });

  it('a restore cancelled while pg_restore runs: the standby keeps the old data, whole, and nothing is left beside it', async () => {
    await resetStandby();
    const old = await fingerprint(green);
    const key = today();
    const h = await start('restoreDatabase', { key, failure: { onFailure: 'fail' } });
    await waitFor(async () => (await green.query('postgres', `SELECT 1 FROM pg_database WHERE datname = 'gigadb_opsflow_new'`)).length > 0 && (await green.query('gigadb_opsflow_new', `SELECT 1 FROM pg_class WHERE relname = 'dataset'`)).length > 0, 'pg_restore to start', 90_000, 20);
    await h.cancel();
    const s = await cancelledRun(h);
    expect(s.undo?.putBack).toEqual(['drop the restored database', `release backup ${key}`]);
    expect(await fingerprint(green)).toEqual(old);
    expect(await databasesOn(green)).toEqual(['gigadb']);
    const leases = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}leases/${key}/` }));
    expect((leases.Contents ?? []).map((o) => o.Key)).not.toContain(`${PREFIX}leases/${key}/${encodeURIComponent(h.workflowId)}`);
  });

  it('prunes by retention, keeping the newest and any backup a running restore holds', async () => {
    const key = today();
    // Old backups, as earlier nights left them: today's dump under their keys, each with its own manifest.
    const m = await manifest(key);
    const copyDump = (to: string) => s3.send(new CopyObjectCommand({ Bucket: BUCKET, CopySource: `${BUCKET}/${PREFIX}${key}.dump`, Key: `${PREFIX}${to}.dump` }));
    for (const old of ['20200101', '20200102', '202001031200']) {
      await copyDump(old);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}${old}.json`, Body: JSON.stringify({ ...m, key: old, object: `${PREFIX}${old}.dump` }) }));
    }
    await copyDump('20200104');
    // 20200102's dump is truncated: its restore fails and waits at a failure gate, holding the backup.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}20200102.dump`, Body: 'truncated' }));
    const holder = await start('restoreDatabase', { key: '20200102' });
    await waitFor(async () => (await holder.query<RunStatus>('status')).gates.find((g) => g.state === 'open'), 'the restore to wait at its failure gate', 60_000);
    // A lease left by a run that has ended holds nothing.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}leases/20200101/${encodeURIComponent('restore-that-ended')}`, Body: '{}' }));

    const dry = await (await start('pruneBackups', { dryRun: true })).result();
    expect(dry.expired).toEqual(['20200101', '20200102', '202001031200', '20200104']);
    const pruneRun = await start('pruneBackups', { failure: { onFailure: 'fail' } });
    const pruned = await pruneRun.result();
    recordHistory(pruneRun, 'pruneBackups-in-use');
    expect(pruned.deleted).toEqual(['20200101', '202001031200', '20200104']);
    expect(pruned.inUse).toEqual([{ key: '20200102', by: [holder.workflowId] }]);
    const left = (await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }))).Contents?.map((o) => o.Key?.slice(PREFIX.length)) ?? [];
    expect(left.filter((k) => k?.startsWith('2020'))).toEqual(['20200102.dump', '20200102.json']);
    expect(left).toContain(`${key}.dump`);

    await holder.executeUpdate('resolve', { args: [{ action: 'abort', by: 'test' }] });
    expect((await failureOf(holder)).type).toBe('Aborted');
    const after = await (await start('pruneBackups', { failure: { onFailure: 'fail' } })).result();
    expect(after.deleted).toEqual(['20200102']);
  });
});
