// Part 6, datasync: what the verified, durable data sync costs over the bare tools on the same data.
// - files: dataSync (stores: files) against plain `rclone sync`, and against `rclone sync` + `rclone check`
//   (what dataSync runs), on a fresh destination each round, local directory to local directory;
// - database: dataSync (stores: database: a backupDatabase child streaming pg_dump to S3 with row counts from the
//   dump's snapshot, then a restoreDatabase child: the download streamed into pg_restore beside the live
//   database with its sha256 checked as it passes, row counts, swap) against a plain `pg_dump -Fc | pg_restore`
//   pipe into a new database, and against a plain script that dumps to S3 and then restores from it.
//   PostgreSQL clusters and moto_server (S3) on loopback, the test suite's helpers.
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { stringify } from 'yaml';
import type { dataSync } from '../../src/workflows/dataSync';
import { runProgram } from '../contenders/spawn';
import { tail } from '../contenders/contender';
import { scratchDir } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { summarize, timed } from '../lib/stats';
import { startOpsWorker, uniqueId, withTemporal } from '../lib/temporal';
import { makeTree, startMoto, startPostgres, treeDigest } from '../lib/testSupport';
import { postgresBinDir } from '../../src/sandbox/postgres';
import type { Part, PartOutput } from './part';

const BUCKET = 'opsflow-bench';
const SYSTEM = 'bench';

/**
 * Seconds each activity of a run took, scheduled to completed, by type (summed over retries and repeats), and its
 * workflow tasks' (started to completed, summed: the worker running the workflow's code).
 */
async function activitySeconds(client: Client, workflowId: string, workflow: string): Promise<Record<string, number>> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const tasks = `${workflow}'s workflow tasks`;
  const out: Record<string, number> = {};
  let taskStarted = 0;
  for (const e of events) {
    if (e.workflowTaskStartedEventAttributes) taskStarted = tsToMs(e.eventTime);
    if (e.workflowTaskCompletedEventAttributes) out[tasks] = Math.round(((out[tasks] ?? 0) + (tsToMs(e.eventTime) - taskStarted) / 1000) * 100) / 100;
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '?', at: tsToMs(e.eventTime) });
    const done = e.activityTaskCompletedEventAttributes;
    const from = done && scheduled.get(String(done.scheduledEventId));
    if (from) out[from.type] = Math.round(((out[from.type] ?? 0) + (tsToMs(e.eventTime) - from.at) / 1000) * 100) / 100;
  }
  return out;
}

export const datasync: Part = {
  name: 'datasync',
  describe: 'dataSync files vs plain rclone sync; backup+restore through S3 vs a plain pg_dump | pg_restore pipe',
  tools: ['opsflow', 'temporal', 'rclone', 'postgresql'],
  async run(ctx): Promise<PartOutput> {
    // The database rounds vary by ±20 % from one to the next on this kind of machine: more of them, for a median.
    const size = ctx.quick ? { small: 1000, large: 1, largeMb: 20, rows: 100_000, rounds: 1, dbRounds: 3 } : { small: 3000, large: 3, largeMb: 20, rows: 300_000, rounds: 5, dbRounds: 15 };
    const dir = scratchDir('datasync');
    const src = path.join(dir, 'blue');
    const dst = path.join(dir, 'green');
    makeTree(src, size);
    // One password for both clusters, so the plain pipe needs a single PGPASSWORD.
    const password = randomBytes(12).toString('hex');
    const [moto, blue, green] = await Promise.all([startMoto(), startPostgres({ password }), startPostgres({ password })]);
    const figures: Figure[] = [];
    const notes: string[] = [];
    try {
      process.env.BENCH_AWS_KEY = moto.credentials.accessKeyId;
      process.env.BENCH_AWS_SECRET = moto.credentials.secretAccessKey;
      process.env.BENCH_PGPASSWORD = password;
      const s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: moto.credentials });
      await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      await blue.query('postgres', 'CREATE DATABASE gigadb');
      await green.query('postgres', 'CREATE DATABASE gigadb');
      await blue.query('gigadb', 'CREATE TABLE dataset (id int PRIMARY KEY, doi text NOT NULL, title text, size bigint, created timestamptz)');
      await blue.query('gigadb', `INSERT INTO dataset SELECT g, '10.5524/' || g, repeat('title ', 1 + g % 7) || g, g * 1024, timestamptz '2020-01-01' + g * interval '1 minute' FROM generate_series(1, ${size.rows}) g`);
      const inventory = path.join(dir, 'inventory.yaml');
      // Every contender runs PostgreSQL's programs from their own directory, not through Debian's Perl wrapper on PATH
      // (~30 ms a call): opsflow by the inventory's `bin`, the plain ones by path.
      const bin = postgresBinDir();
      const pgTool = (name: string) => path.join(bin, name);
      const db = (pg: typeof blue) => ({ host: pg.host, port: pg.port, database: 'gigadb', user: pg.user, passwordEnv: 'BENCH_PGPASSWORD', bin });
      writeFileSync(
        inventory,
        stringify({
          aws: { s3: { region: 'us-east-1', accessKeyIdEnv: 'BENCH_AWS_KEY', secretAccessKeyEnv: 'BENCH_AWS_SECRET', endpoint: moto.endpoint } },
          databases: { 'blue-db': db(blue), 'green-db': db(green) },
          systems: {
            [SYSTEM]: {
              infrastructures: { blue: { aws: 's3', files: src, database: 'blue-db' }, green: { aws: 's3', files: dst, database: 'green-db' } },
              roles: { production: 'blue', standby: 'green' },
              backups: { account: 's3', bucket: BUCKET },
            },
          },
        }),
      );
      const pgEnv = { ...process.env, PGPASSWORD: password };
      const conn = (pg: typeof blue, database: string) => ['-w', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', database];
      /** Resolves when the program exits 0. */
      const exit0 = (child: ReturnType<typeof spawn>, what: string) =>
        new Promise<void>((resolve, reject) => child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} exited ${code}`)))));
      const run = async (cmd: string, args: string[], env = process.env) => {
        const res = await runProgram(cmd, args, { env, timeoutMs: 600_000 });
        if (res.code !== 0) throw new Error(`${cmd} ${args[0]} exited ${res.code}: ${tail(res.stderr || res.stdout)}`);
      };
      await withTemporal(async (t) => {
        const worker = await startOpsWorker(t, inventory);
        let lastId = '';
        const execute = (input: Record<string, unknown>) => {
          lastId = uniqueId('datasync');
          return t.client.workflow.execute<typeof dataSync>('dataSync', { taskQueue: worker.taskQueue, workflowId: lastId, args: [{ system: SYSTEM, failure: { onFailure: 'fail' }, ...input } as never] });
        };
        try {
          const fresh = () => rmSync(dst, { recursive: true, force: true });
          const files = [
            { name: 'opsflow dataSync (sync + check)', ms: [] as number[], run: () => execute({ stores: ['files'] }) },
            { name: 'plain rclone sync', ms: [] as number[], run: () => run('rclone', ['sync', src, dst, '--config', '']) },
            {
              name: 'plain rclone sync + rclone check',
              ms: [] as number[],
              run: async () => {
                await run('rclone', ['sync', src, dst, '--config', '']);
                await run('rclone', ['check', src, dst, '--config', '']);
              },
            },
          ];
          for (let round = 0; round < size.rounds; round++) {
            for (const way of files) {
              fresh();
              way.ms.push(await timed(way.run));
            }
          }
          if (JSON.stringify([...treeDigest(dst)]) !== JSON.stringify([...treeDigest(src)])) throw new Error('the trees differ after the sync');
          const [opsFiles, plainSync, plainBoth] = files.map((w) => summarize(w.ms));
          files.forEach((w, i) => figures.push({ name: `files: ${w.name}`, value: [opsFiles, plainSync, plainBoth][i].median, unit: 'ms', stats: [opsFiles, plainSync, plainBoth][i] }));
          figures.push({ name: 'files: opsflow / plain rclone sync', value: opsFiles.median / plainSync.median, unit: '×' });
          figures.push({ name: 'files: opsflow / plain sync + check', value: opsFiles.median / plainBoth.median, unit: '×' });

          let round = 0;
          const database = [
            // A new key every round: an existing one would be reused, not dumped again.
            { name: 'opsflow backup to S3 + restore + verify', ms: [] as number[], run: () => execute({ stores: ['database'], key: `2020010100${String(round).padStart(2, '0')}` }) },
            {
              name: 'plain pg_dump -Fc | pg_restore',
              ms: [] as number[],
              run: async () => {
                await green.query('postgres', 'DROP DATABASE IF EXISTS plain WITH (FORCE)');
                await green.query('postgres', 'CREATE DATABASE plain');
                await run('sh', ['-c', '"$B/pg_dump" -Fc "$@" | "$B/pg_restore" --exit-on-error -w -h "$H" -p "$P" -U "$U" -d plain', 'sh', ...conn(blue, 'gigadb')], { ...pgEnv, B: bin, H: green.host, P: String(green.port), U: green.user });
              },
            },
            // What a script doing the runbook's two halves would take without any check: the dump to S3 (at opsflow's
            // compression), then the restore from it; the standby's tools run where the standby is, so a restore
            // cannot read the dump as it is made.
            {
              name: 'plain script: pg_dump -Fc -Z1 to S3, then S3 into pg_restore',
              ms: [] as number[],
              run: async () => {
                await green.query('postgres', 'DROP DATABASE IF EXISTS plain WITH (FORCE)');
                await green.query('postgres', 'CREATE DATABASE plain');
                const key = `plain/${round}.dump`;
                const dump = spawn(pgTool('pg_dump'), ['-Fc', '-Z1', ...conn(blue, 'gigadb')], { env: pgEnv, stdio: ['ignore', 'pipe', 'inherit'] });
                await Promise.all([new Upload({ client: s3, params: { Bucket: BUCKET, Key: key, Body: dump.stdout } }).done(), exit0(dump, 'pg_dump')]);
                const body = (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body as Readable;
                const restore = spawn(pgTool('pg_restore'), ['--exit-on-error', ...conn(green, 'plain')], { env: pgEnv, stdio: ['pipe', 'ignore', 'inherit'] });
                body.pipe(restore.stdin);
                await exit0(restore, 'pg_restore');
              },
            },
          ];
          for (; round < size.dbRounds; round++) for (const way of database) way.ms.push(await timed(way.run));
          const key = `2020010100${String(size.dbRounds - 1).padStart(2, '0')}`;
          const breakdown = { ...(await activitySeconds(t.client, lastId, 'dataSync')), ...(await activitySeconds(t.client, `${lastId}/backup-${key}`, 'backupDatabase')), ...(await activitySeconds(t.client, `${lastId}/restore-${key}`, 'restoreDatabase')) };
          notes.push(`database, where the last opsflow round's time went (s per activity, scheduled to completed): ${Object.entries(breakdown).map(([k, v]) => `${k} ${v}`).join(', ')}`);
          const [opsDb, plainDb, scriptDb] = database.map((w) => summarize(w.ms));
          database.forEach((w, i) => figures.push({ name: `database, ${size.rows.toLocaleString('en')} rows: ${w.name}`, value: [opsDb, plainDb, scriptDb][i].median, unit: 'ms', stats: [opsDb, plainDb, scriptDb][i] }));
          figures.push({ name: 'database: opsflow / plain pipe', value: opsDb.median / plainDb.median, unit: '×' });
          figures.push({ name: 'database: opsflow / plain script through S3', value: opsDb.median / scriptDb.median, unit: '×' });
        } finally {
          await worker.stop();
        }
      });
      notes.push(`files: ${size.small} files of 0.2–4 KiB in 210 directories and ${size.large} of ${size.largeMb} MiB, local to local, a fresh destination every round; rclone defaults except opsflow's --checkers 8 --transfers 4`);
      notes.push('files: opsflow also runs `rclone check` (sizes and MD5 of every file, both trees read again) and refuses to finish on a difference; plain sync does neither, hence the sync + check row');
      notes.push(`database: every contender runs pg_dump, pg_restore and psql from ${bin} (the inventory's \`bin\` for opsflow), not through Debian's wrapper on PATH`);
      notes.push('database: opsflow exports a snapshot and counts every table in it while pg_dump (gzip level 1) streams to S3 (moto_server on loopback) with its sha256, records the ETag, checks the object size and ETag, streams it into pg_restore into a new database with its sha256 checked as it passes, counts rows again and runs the checks, swaps by rename and drops the old data, in two child workflows; the plain pipe and the plain script do none of that');
    } finally {
      moto.stop();
      blue.stop();
      green.stop();
    }
    return { figures, notes };
  },
};
