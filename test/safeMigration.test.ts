// safeMigration against a real PostgreSQL cluster and a real application: the test app (test/support/dataapp)
// runs on fleet host h3, reads its database from its config file, stores notes there through psql, and refuses
// writes while its read-only flag file exists. Its check command writes and reads a note through it, so
// "read-only", "writes refused" and "switched" are what the application itself does.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { InventoryError, parseInventory } from '../src/config/inventory';
import type { SafeMigrationInput } from '../src/schemas/safeMigration';
import type { RunStatus } from '../src/runbook/protocol';
import type { safeMigration } from '../src/workflows/safeMigration';
import { APP_CTL, APP_PY, appDirTemplate, startDataApp, type DataApp } from './support/dataapp';
import { cancelledRun, failureOf, recordHistory, spawnWorker, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';
import { startPostgres, type TestPostgres } from './support/postgres';

const NODE = 'h3';
const PASSWORD_ENV = 'OPSFLOW_TEST_MIGRATION_PGPASSWORD';
const name = unique('migapp');
let env: TestWorkflowEnvironment;
let pg: TestPostgres;
let app: DataApp;
let inventory: string;
let worker: { stop(): Promise<void> };
const queue = unique('migration');
const backupDir = mkdtempSync(path.join(tmpdir(), 'opsflow-migration-backups-'));
const spawned: ChildProcess[] = [];

const flag = () => path.join(app.dir, 'READONLY');
const psql = (sql: string) => ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql];
const columns = async (database: string) => (await pg.query<{ column_name: string }>(database, `SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY ordinal_position`)).map((r) => r.column_name);
const databases = async () => (await pg.query<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname LIKE 'appdb%' ORDER BY datname`)).map((r) => r.datname);
const notes = async (database = 'appdb') => (await pg.query<{ body: string }>(database, 'SELECT body FROM notes ORDER BY id')).map((r) => r.body);

beforeAll(async () => {
  env = await testEnv();
  pg = await startPostgres();
  process.env[PASSWORD_ENV] = pg.password;
  await pg.query('postgres', 'CREATE DATABASE appdb');
  await pg.query('appdb', 'CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
  await pg.query('appdb', `INSERT INTO notes (body) SELECT 'note ' || i FROM generate_series(1, 50) i`);
  const dir = appDirTemplate(name).replace('{node}', NODE);
  app = await startDataApp(NODE, name, { database: { host: pg.host, port: pg.port, user: pg.user, name: 'appdb', passwordFile: path.join(dir, 'pw') }, readOnlyFlag: path.join(dir, 'READONLY') }, { files: { pw: pg.password } });
  const application = (off: string[]) => ({
    environment: 'test',
    database: 'app',
    readOnly: { on: { host: NODE, command: ['touch', flag()] }, off: { host: NODE, command: off } },
    restart: [{ host: NODE, command: ['sh', APP_CTL, app.dir, app.address, String(app.port)] }],
    check: { host: NODE, command: ['python3', APP_PY, 'check', app.url, 'notes', 'appdb'] },
  });
  inventory = writeInventory({
    sections: {
      databases: { app: { host: pg.host, port: pg.port, database: 'appdb', user: pg.user, passwordEnv: PASSWORD_ENV, checks: [{ name: 'has-notes', sql: 'SELECT count(*) > 0 FROM notes', expect: 't' }] } },
      applications: {
        app: application(['rm', '-f', flag()]),
        // The same application whose way back to writable takes a while, and counts how often it ran.
        'app-slow-writable': application(['sh', '-c', 'echo run >> "$1.off-runs"; sleep 4; rm -f -- "$1"', 'off', flag()]),
      },
    },
  });
  worker = await startWorker(env, inventory, queue);
});

afterEach(() => {
  for (const w of spawned.splice(0)) if (w.exitCode === null) w.kill('SIGKILL');
});

afterAll(async () => {
  await worker?.stop();
  app?.stop();
  pg?.stop();
  rmSync(backupDir, { recursive: true, force: true });
  await env?.teardown();
});

function start(input: Partial<SafeMigrationInput>, taskQueue = queue): Promise<WorkflowHandle<typeof safeMigration>> {
  return env.client.workflow.start<typeof safeMigration>('safeMigration', {
    taskQueue,
    workflowId: unique('migrate'),
    args: [{ application: 'app', migration: { id: 'm1', commands: [psql('SELECT 1')] }, backupDir, ...input }],
  });
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const openGate = (h: WorkflowHandle, kind: 'approval' | 'failure') => waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open' && g.kind === kind), `an open ${kind} gate`, 90_000);
const whoami = async () => JSON.parse((await app.get('/whoami')).text) as { database: string; readOnly: boolean };

describe("the inventory's applications", () => {
  it('names every unknown database, environment and host, with its line', () => {
    const text = stringify({
      defaults: { user: 'deploy', agent: true },
      environments: { prod: { hosts: { app1: { address: '10.0.0.1', hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKuRiamDGWPKK+BXVosD8Vgzub1mrXmPG08kAY6wJ6tk'] } } } },
      databases: { karl: { host: 'db1', database: 'karl', user: 'karl' } },
      applications: {
        karl: {
          environment: 'prod',
          database: 'karl-typo',
          readOnly: { on: { host: 'app1', command: ['touch', '/srv/RO'] }, off: { host: 'app2', command: ['rm', '-f', '/srv/RO'] } },
          restart: [{ host: 'app1', command: ['systemctl', 'restart', 'karl'] }],
          check: { host: 'app1', command: [] },
        },
        other: { environment: 'staging', database: 'karl', readOnly: { on: { host: 'a', command: ['x'] }, off: { host: 'a', command: ['y'] } }, restart: [{ host: 'a', command: ['z'] }], check: { host: 'a', command: ['c'] } },
      },
    });
    const err = (() => {
      try {
        parseInventory(text, '/etc/opsflow/inventory.yaml');
      } catch (e) {
        return e as InventoryError;
      }
    })();
    expect(err).toBeInstanceOf(InventoryError);
    expect(err?.problems.every((p) => /^\/etc\/opsflow\/inventory\.yaml:\d+:\d+: /.test(p))).toBe(true);
    expect(err?.problems.map((p) => p.replace(/^\/etc\/opsflow\/inventory\.yaml:\d+:\d+: /, ''))).toEqual([
      'applications.karl.check.command: needs at least the program name',
      'applications.karl.database: unknown database "karl-typo"',
      'applications.karl.readOnly.off.host: unknown host "app2" in prod',
      'applications.other.environment: unknown environment "staging"',
    ]);
  });
});

describe('safeMigration', () => {
  it('migrates a restored copy while writes are refused, switches the application to it, and makes it writable', async () => {
    const h = await start({
      migration: {
        id: 'add_flag',
        commands: [
          psql('ALTER TABLE notes ADD COLUMN migrated boolean NOT NULL DEFAULT true'),
          // Shell syntax in an argument is data: it reaches psql as one argument and the table as text.
          psql("INSERT INTO notes (body) VALUES ('$(touch /tmp/opsflow-pwned); `id` && rm -rf / ;')"),
          // A migration that takes a moment, so the test can try a write meanwhile.
          psql('SELECT pg_sleep(3)'),
        ],
      },
      checks: [{ name: 'migrated', sql: 'SELECT bool_and(migrated) FROM notes', expect: 't' }],
      approval: { approvers: ['alice'] },
    });
    const gate = await openGate(h, 'approval');
    expect(gate.evidence).toContain('switch: rename appdb to appdb_pre_add_flag and appdb_mig_add_flag to appdb, in one transaction');
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });

    // During the migration the application refuses writes: an attempt through it is turned away.
    await waitFor(async () => (await status(h)).phase === 'migrate', 'the migration to start', 60_000);
    expect(await whoami()).toEqual({ database: 'appdb', readOnly: true });
    const during = await app.post('/notes', 'written during the migration');
    expect(during).toEqual({ status: 503, text: 'read-only: writes are refused' });

    const result = await h.result();
    expect(result).toMatchObject({ ok: true, switched: true, database: 'appdb', copy: 'appdb_mig_add_flag', previous: 'appdb_pre_add_flag' });
    expect(result.readOnly.refusal).toContain('write refused: HTTP 503');
    expect(result.readOnly.periods).toHaveLength(1);
    expect(Date.parse(result.readOnly.periods[0].to as string)).toBeGreaterThanOrEqual(Date.parse(result.readOnly.periods[0].from));
    expect(result.readOnly.ms).toBe(Date.parse(result.readOnly.periods[0].to as string) - Date.parse(result.readOnly.periods[0].from));
    expect(result.backups.full?.tables).toEqual({ 'public.notes': 50 });
    expect(result.backups.final?.walLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    for (const b of [result.backups.full, result.backups.final]) expect(existsSync(b?.file as string)).toBe(true);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['has-notes', true],
      ['migrated', true],
    ]);

    // The application runs on the migrated data under its own database name, and takes writes again.
    expect(await whoami()).toEqual({ database: 'appdb', readOnly: false });
    expect(existsSync(flag())).toBe(false);
    expect(await columns('appdb')).toEqual(['id', 'body', 'migrated']);
    expect((await app.post('/notes', 'written after the migration')).status).toBe(201);
    expect(await notes()).toContain('written after the migration');
    expect(await notes()).toContain("$(touch /tmp/opsflow-pwned); `id` && rm -rf / ;");
    expect(existsSync('/tmp/opsflow-pwned')).toBe(false);
    // The original data is kept beside it, as it was: not migrated, without the refused write.
    expect(await columns('appdb_pre_add_flag')).toEqual(['id', 'body']);
    expect(await notes('appdb_pre_add_flag')).not.toContain('written during the migration');
    expect(await databases()).toEqual(['appdb', 'appdb_pre_add_flag']);
    recordHistory(h, 'safeMigration-switched');
  });

  it('a migration that fails midway leaves production untouched and writable, and keeps the copy', async () => {
    const before = await notes();
    const h = await start({ migration: { id: 'broken', commands: [psql('ALTER TABLE notes ADD COLUMN half boolean'), psql('ALTER TABLE no_such_table ADD COLUMN x int')] } });
    const gate = await openGate(h, 'failure');
    expect(gate.evidence).toContain('migration command 2 of 2 failed on appdb_mig_broken');
    expect(gate.evidence).toContain('relation "no_such_table" does not exist');
    // While the operator decides, the application stays read-only.
    expect((await app.post('/notes', 'written at the failure gate')).status).toBe(503);
    await h.executeUpdate('resolve', { args: [{ action: 'abort', by: 'alice' }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Aborted');
    expect(message).toContain('appdb has the original data, untouched; the copy is kept for inspection as appdb_mig_broken; writable; read-only for');
    expect(await whoami()).toEqual({ database: 'appdb', readOnly: false });
    expect(await columns('appdb')).toEqual(['id', 'body', 'migrated']);
    expect(await notes()).toEqual(before);
    expect((await app.post('/notes', 'written after the failed migration')).status).toBe(201);
    // The copy, as the failed migration left it, for inspection.
    expect(await columns('appdb_mig_broken')).toEqual(['id', 'body', 'migrated', 'half']);
    expect((await pg.query<{ c: string }>('postgres', `SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = 'appdb_mig_broken'`))[0].c).toMatch(/: migrating$/);
  });

  // Generous: two workers start in their own processes (each bundles the workflows), and the retry waits out a
  // heartbeat timeout.
  it('a worker killed between the switch and writable: a new worker finishes, writable on the migrated copy', async () => {
    const killQueue = unique('migration-kill');
    const first = spawnWorker(inventory, killQueue, { [PASSWORD_ENV]: pg.password });
    spawned.push(first);
    const h = await start({ application: 'app-slow-writable', migration: { id: 'killed', commands: [psql('ALTER TABLE notes ADD COLUMN survived boolean NOT NULL DEFAULT true')] } }, killQueue);
    // The switch is done and the way back to writable has started.
    await waitFor(() => existsSync(`${flag()}.off-runs`), 'read-only off to start', 90_000);
    expect(await columns('appdb')).toContain('survived');
    first.kill('SIGKILL');
    if (first.exitCode === null && first.signalCode === null) await new Promise((r) => first.once('exit', r));
    spawned.push(spawnWorker(inventory, killQueue, { [PASSWORD_ENV]: pg.password }));
    const result = await h.result();
    expect(result).toMatchObject({ ok: true, switched: true });
    expect(await whoami()).toEqual({ database: 'appdb', readOnly: false });
    expect(await columns('appdb')).toContain('survived');
    expect((await app.post('/notes', 'written after the restart')).status).toBe(201);
    // The retried step collected the first run of the command instead of running it again.
    expect(readFileSync(`${flag()}.off-runs`, 'utf8')).toBe('run\n');
    const retried = ((await h.fetchHistory()).events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
    expect(retried.length).toBeGreaterThan(0);
    recordHistory(h, 'safeMigration-killed-before-writable');
  }, 240_000);

  it('a cancelled migration is undone: writable again, on the original data, the copy kept', async () => {
    const h = await start({ migration: { id: 'cancelled', commands: [psql('ALTER TABLE notes ADD COLUMN never boolean'), psql('SELECT pg_sleep(30)')] } });
    await waitFor(async () => (await status(h)).phase === 'migrate', 'the migration to start', 60_000);
    await h.cancel();
    const s = await cancelledRun(h);
    expect(s.undo?.putBack).toEqual(['back to writable']);
    expect(await whoami()).toEqual({ database: 'appdb', readOnly: false });
    expect(await columns('appdb')).not.toContain('never');
    expect(await databases()).toContain('appdb_mig_cancelled');
  });

  it('refuses bad input before anything changes; a shell command line is a program name, never a shell', async () => {
    const dbs = await databases();
    const invalid = await Promise.all([
      start({ migration: { id: 'Bad;id', commands: [psql('SELECT 1')] } }),
      start({ migration: { id: 'x', commands: [] } }),
      start({ backupDir: 'relative/dir' }),
    ].map(async (p) => failureOf(await p)));
    expect(invalid.map((f) => f.type)).toEqual(['InvalidInput', 'InvalidInput', 'InvalidInput']);
    expect(invalid[0].message).toContain('migration.id: lower-case letters');
    expect(invalid[1].message).toContain('migration.commands');
    expect(invalid[2].message).toContain('backupDir: an absolute path');
    expect(await failureOf(await start({ application: 'nope' }))).toMatchObject({ type: 'UnknownTarget', message: expect.stringContaining('unknown application "nope"') });
    // An id already used: its names are taken, so nothing starts.
    const reused = await failureOf(await start({ migration: { id: 'add_flag', commands: [psql('SELECT 1')] } }));
    expect(reused.message).toContain('appdb_pre_add_flag exists already');
    expect(await databases()).toEqual(dbs);
    expect(existsSync(flag())).toBe(false);

    const pwned = path.join(tmpdir(), unique('opsflow-pwned'));
    const h = await start({ migration: { id: 'shell', commands: [[`touch ${pwned}; echo`]] }, failure: { onFailure: 'fail' } });
    const { message } = await failureOf(h);
    expect(message).toContain('migration command 1 of 1 failed on appdb_mig_shell (the program was not found)');
    expect(existsSync(pwned)).toBe(false);
    expect(await whoami()).toEqual({ database: 'appdb', readOnly: false });

    const plan = await (await start({ migration: { id: 'planned', commands: [psql('SELECT 1')] }, dryRun: true })).result();
    expect(plan.plan?.[0]).toContain('full backup: pg_dump appdb (on worker)');
    expect(plan.plan).toContain("migrate 1/1: `psql -X -q -v ON_ERROR_STOP=1 -c 'SELECT 1'` with PGDATABASE=appdb_mig_planned (on worker)");
    expect(await databases()).toEqual([...dbs, 'appdb_mig_shell'].sort());
  });
});
