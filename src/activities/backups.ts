// Database backups in S3 and their restore on the standby.
//
// Layout under s3://<bucket>/<prefix><system>/:
//   <key>.dump                 pg_dump -Fc, streamed up while it is written
//   <key>.json                 the manifest, written last: a backup is complete once it exists. It holds the dump's
//                              size, sha256 and S3 ETag, and the row count of every table, counted in the snapshot
//                              pg_dump dumped.
//   leases/<key>/<workflowId>  a restore using the key; pruning leaves leased keys alone
//
// A restore checks the object's size and ETag against the manifest before it writes to the standby (dataSync's
// restore has made its empty database beside the live one by then, while the backup ran); streams it from S3 into
// pg_restore into a new database beside the live one, checking its byte count and sha256 against the manifest as
// it passes (a mismatch drops the new database); checks row counts and the inventory's check queries there; then
// swaps it in by renaming both databases in one transaction. The live database is never half-restored: until the
// swap it is the old data, afterwards the new.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  AbortMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { backupKeyKind, type BackupKeyKind } from '../schemas/backupKey';
import { s3Client } from './aws';
import { assertReceiver, backupPrefix, infrastructureOf, type DataDeps } from './dataSync';
import { MAINTENANCE_DB, Postgres, toolFailure, type CheckOutcome } from './postgres';
import type { SshPool } from './ssh/pool';
import { heartbeatEvery, Tools } from './tool';
import { BackupCorrupt, BackupNotFound, InvalidInput, Misconfigured, RestoreMissing, RestoreNotVerified, VerifyFailed } from '../common/errors';

export interface BackupManifest {
  format: 1;
  system: string;
  key: string;
  kind: BackupKeyKind;
  infrastructure: string;
  /** The database's name on its server. */
  database: string;
  /** The dump's S3 key. */
  object: string;
  size: number;
  sha256: string;
  /**
   * The dump object's ETag when it was written: any later write of that key changes it. (Absent from backups made
   * before it was recorded, whose objects carry their sha256 as metadata instead.)
   */
  etag?: string;
  /** Rows per table (`schema.table`) in the dumped snapshot. */
  tables: Record<string, number>;
  startedAt: string;
  finishedAt: string;
}

export interface BackupResult {
  key: string;
  url: string;
  infrastructure: string;
  database: string;
  size: number;
  sha256: string;
  tables: number;
  rows: number;
  /** The key was already backed up: nothing was dumped again. */
  reused: boolean;
}

export interface BackupEntry {
  key: string;
  size?: number;
  complete: boolean;
}

const PART_SIZE = 16 * 1024 * 1024;

const notFound = (err: unknown) => ['NoSuchKey', 'NotFound', 'NoSuchUpload'].includes((err as { name?: string }).name ?? '');
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** The workflow run this activity works for: leases and restore markers are named after it. */
function currentRun(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new InvalidInput('this activity must run for a workflow');
  return run;
}

/** Counts and hashes the bytes that pass. */
function meter(): Transform & { bytes: number; digest(): string } {
  const hash = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      m.bytes += chunk.length;
      done(null, chunk);
    },
  });
  const m = Object.assign(t, { bytes: 0, digest: () => hash.digest('hex') });
  return m;
}

/** What an activity reports in its heartbeats: its phase and, while bytes flow, how many. */
interface Progress {
  phase: string;
  meter?: { bytes: number };
  of?: number;
}

/**
 * Runs an activity's body heartbeating its progress every 5 s through every phase (a count of a large
 * database's rows, or a drop, takes minutes too), so a dead worker is noticed within the heartbeat timeout.
 */
async function beating<T>(fn: (progress: Progress) => Promise<T>): Promise<T> {
  const progress: Progress = { phase: 'start' };
  const stop = heartbeatEvery(5_000, () => ({ phase: progress.phase, bytes: progress.meter?.bytes, of: progress.of }));
  try {
    return await fn(progress);
  } catch (err) {
    // Stopped because the run was cancelled: said so, and a run waiting for the stop goes on to its undo.
    if (Context.current().cancellationSignal.aborted) throw new CancelledFailure(`stopped during ${progress.phase}`);
    throw err;
  } finally {
    stop();
  }
}

/** The scratch and previous names beside a live database (63 bytes at most, PostgreSQL's limit). */
export function sideNames(live: string): { incoming: string; old: string } {
  const base = live.slice(0, 51);
  return { incoming: `${base}_opsflow_new`, old: `${base}_opsflow_old` };
}

export function createBackupActivities(deps: DataDeps & { ssh: SshPool }) {
  const { inventory, temporal } = deps;
  const postgres = new Postgres(inventory, new Tools(deps));

  function location(system: string) {
    const sys = inventory.system(system);
    if (!sys.backups) throw new Misconfigured(`${system} has no backups section in the inventory`);
    const prefix = backupPrefix(sys, system);
    const s3: S3Client = s3Client(inventory.awsAccount(sys.backups.account));
    return {
      sys,
      s3,
      bucket: sys.backups.bucket,
      prefix,
      dumpKey: (key: string) => `${prefix}${key}.dump`,
      manifestKey: (key: string) => `${prefix}${key}.json`,
      leasePrefix: (key?: string) => `${prefix}leases/${key ? `${key}/` : ''}`,
    };
  }
  type Location = ReturnType<typeof location>;

  function checkKey(key: string): BackupKeyKind {
    const kind = backupKeyKind(key);
    if (!kind) throw new InvalidInput(`"${key}" is not a backup key (YYYYMMDD or YYYYMMDDHHMM)`);
    return kind;
  }

  async function manifestOf(loc: Location, key: string): Promise<BackupManifest | undefined> {
    try {
      const res = await loc.s3.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.manifestKey(key) }));
      return JSON.parse(await (res.Body as { transformToString(): Promise<string> }).transformToString()) as BackupManifest;
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  function databaseOf(system: string, infrastructure: string) {
    const sys = inventory.system(system);
    const infra = infrastructureOf(sys, system, infrastructure);
    if (!infra.database) throw new Misconfigured(`${system}'s ${infrastructure} names no database`);
    const db = postgres.config(infra.database);
    return { db, live: db.database, ...sideNames(db.database) };
  }

  /** The comment a verified restore carries: the swap only takes a database that bears this run's. */
  function marker(system: string, key: string, sha256: string): string {
    const run = currentRun();
    return `opsflow restore of ${system} backup ${key} (sha256 ${sha256.slice(0, 16)}) by ${run.workflowId} run ${run.runId}`;
  }

  function result(loc: Location, m: BackupManifest, reused: boolean): BackupResult {
    return { key: m.key, url: `s3://${loc.bucket}/${m.object}`, infrastructure: m.infrastructure, database: m.database, size: m.size, sha256: m.sha256, tables: Object.keys(m.tables).length, rows: sum(m.tables), reused };
  }

  /** Multipart uploads a killed attempt left behind, invisible but billed. */
  async function abortStaleUploads(loc: Location, key: string): Promise<void> {
    const res = await loc.s3.send(new ListMultipartUploadsCommand({ Bucket: loc.bucket, Prefix: key }));
    for (const u of res.Uploads ?? []) {
      if (u.Key === key) await loc.s3.send(new AbortMultipartUploadCommand({ Bucket: loc.bucket, Key: key, UploadId: u.UploadId })).catch((err) => (notFound(err) ? undefined : Promise.reject(err)));
    }
  }

  /** pg_dump's stdout, hashed and counted on its way into an S3 multipart upload. */
  async function dumpToS3(loc: Location, object: string, dump: Awaited<ReturnType<Postgres['dump']>>, metadata: Record<string, string>, progress: Progress) {
    const m = meter();
    progress.meter = m;
    const upload = new Upload({ client: loc.s3, params: { Bucket: loc.bucket, Key: object, Body: m, ContentType: 'application/octet-stream', Metadata: metadata }, partSize: PART_SIZE, queueSize: 2, leavePartsOnError: false });
    let stderr = '';
    dump.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-16 * 1024);
    });
    const ctx = Context.current();
    const onCancel = () => dump.kill();
    ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
    const uploaded = upload.done();
    uploaded.catch(() => dump.kill());
    try {
      dump.stdout.pipe(m, { end: false });
      const ended = new Promise<void>((resolve) => {
        dump.stdout.once('end', resolve);
        dump.stdout.once('close', resolve);
      });
      const [exit] = await Promise.all([dump.exited, ended]);
      if (exit.code !== 0) {
        await upload.abort().catch(() => undefined);
        await uploaded.catch(() => undefined);
        throw toolFailure(`pg_dump on ${dump.where}`, { ...exit, stderr });
      }
      m.end();
      const { ETag } = await uploaded;
      if (!ETag) throw new Error(`S3 gave no ETag for ${object}`);
      return { size: m.bytes, sha256: m.digest(), etag: ETag };
    } finally {
      ctx.cancellationSignal.removeEventListener('abort', onCancel);
    }
  }

  const corruptBackup = (loc: Location, key: string, why: string, where = 'the standby was not touched') =>
    new BackupCorrupt(`backup ${key} (s3://${loc.bucket}/${loc.dumpKey(key)}) is corrupt: ${why}; ${where}`);

  /**
   * The dump object of `key`, checked against its manifest (name, size, ETag or metadata sha256) before a restore
   * writes anything; a refusal says what it left as it was (`untouched`; default: the whole standby).
   */
  async function checkedObject(loc: Location, m: BackupManifest, key: string, untouched?: string): Promise<string> {
    const object = loc.dumpKey(key);
    const corrupt = (why: string) => corruptBackup(loc, key, why, untouched);
    if (m.key !== key || m.object !== object) throw corrupt(`its manifest describes ${m.object} (key ${m.key})`);
    let head;
    try {
      head = await loc.s3.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: object }));
    } catch (err) {
      if (notFound(err)) throw new BackupNotFound(`backup ${key} has a manifest but no dump at s3://${loc.bucket}/${object} (pruned or deleted)`);
      throw err;
    }
    if (head.ContentLength !== m.size) throw corrupt(`it is ${head.ContentLength} bytes, the backup recorded ${m.size}`);
    if (m.etag && head.ETag !== m.etag) throw corrupt(`it was written again since the backup (ETag ${head.ETag}, the backup recorded ${m.etag})`);
    if (head.Metadata?.sha256 && head.Metadata.sha256 !== m.sha256) throw corrupt(`its metadata sha256 ${head.Metadata.sha256} is not the manifest's ${m.sha256}`);
    return object;
  }

  /**
   * Streams the dump from S3 into pg_restore, counting and hashing it on the way (no spool on the worker's disk,
   * download and restore overlap). The bytes are checked against the manifest once the stream ends, whether
   * pg_restore succeeded or not; the caller drops the scratch database when they do not match.
   */
  async function streamRestore(loc: Location, m: BackupManifest, object: string, into: { db: ReturnType<typeof databaseOf>['db']; database: string }, progress: Progress) {
    const ctx = Context.current();
    const fed = meter();
    Object.assign(progress, { phase: 'download and pg_restore', meter: fed, of: m.size });
    const res = await loc.s3.send(new GetObjectCommand({ Bucket: loc.bucket, Key: object }), { abortSignal: ctx.cancellationSignal });
    const body = res.Body as Readable;
    // A broken download ends the stream with its error (pg_restore is killed by tools.run on it too).
    body.once('error', (err) => fed.destroy(err));
    let restored;
    try {
      restored = await postgres.restore(into.db, into.database, body.pipe(fed), { timeoutMs: ctx.info.startToCloseTimeoutMs, signal: ctx.cancellationSignal });
      ctx.cancellationSignal.throwIfAborted();
      // pg_restore may stop reading before the end (an error, or trailing bytes it does not need): read the rest,
      // so the whole object is checked.
      fed.unpipe();
      fed.resume();
      await finished(fed);
    } finally {
      body.destroy();
    }
    const digest = fed.digest();
    const problem = fed.bytes !== m.size ? `${fed.bytes} bytes arrived, the backup recorded ${m.size}` : digest !== m.sha256 ? `its sha256 is ${digest}, the backup recorded ${m.sha256}` : undefined;
    return { restored, problem };
  }

  /** The runs holding a lease on `key` now; a lease whose run has ended (its worker died before releasing it) is removed. */
  async function holders(loc: Location, key: string): Promise<string[]> {
    const running: string[] = [];
    for (const obj of await listAll(loc, loc.leasePrefix(key))) {
      const workflowId = decodeURIComponent(obj.Key.slice(loc.leasePrefix(key).length));
      let alive = false;
      try {
        alive = (await temporal.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
      } catch (err) {
        if ((err as { name?: string }).name !== 'WorkflowNotFoundError') throw err;
      }
      if (alive) running.push(workflowId);
      else await loc.s3.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: obj.Key }));
    }
    return running;
  }

  async function listAll(loc: Location, prefix: string): Promise<{ Key: string; Size: number }[]> {
    const out: { Key: string; Size: number }[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const res = await loc.s3.send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of res.Contents ?? []) if (o.Key) out.push({ Key: o.Key, Size: o.Size ?? 0 });
      if (!res.IsTruncated) break;
      token = res.NextContinuationToken;
    }
    return out;
  }

  return {
    /**
     * pg_dump of the infrastructure's database streamed to S3 under `key`, with row counts from the same snapshot.
     * A key whose manifest exists is already backed up and is returned as it is.
     */
    async backupToS3(input: { system: string; infrastructure: string; key: string }): Promise<BackupResult> {
      const kind = checkKey(input.key);
      const loc = location(input.system);
      const existing = await manifestOf(loc, input.key);
      if (existing) return result(loc, existing, true);
      const { db, live } = databaseOf(input.system, input.infrastructure);
      const object = loc.dumpKey(input.key);
      const startedAt = new Date().toISOString();
      return beating(async (progress) => {
        progress.phase = 'snapshot';
        // The session's start (psql, a login) and the S3 listing at once.
        const opening = postgres.snapshot(db, live);
        opening.catch(() => undefined);
        try {
          await abortStaleUploads(loc, object);
        } catch (err) {
          void opening.then((s) => s.close(), () => undefined);
          throw err;
        }
        const snapshot = await opening;
        let dumped: Awaited<ReturnType<typeof dumpToS3>>;
        let tables: Record<string, number>;
        try {
          progress.phase = 'dump to S3, and row counts';
          const dump = await postgres.dump(db, live, { snapshot: snapshot.id });
          const uploading = dumpToS3(loc, object, dump, { system: input.system, key: input.key, infrastructure: input.infrastructure, database: live }, progress);
          // The dump and the count read the same snapshot at once; the first to fail stops the other, and its
          // error, not the other's "killed", is the activity's.
          let cause: unknown;
          const stop = (err: unknown) => {
            cause ??= err;
            dump.kill();
            void snapshot.close();
          };
          uploading.catch(stop);
          snapshot.counts.catch(stop);
          const [up, counted] = await Promise.allSettled([uploading, snapshot.counts]);
          if (up.status === 'rejected' || counted.status === 'rejected') throw cause;
          [dumped, tables] = [up.value, counted.value];
        } finally {
          await snapshot.close();
        }
        const manifest: BackupManifest = { format: 1, system: input.system, key: input.key, kind, infrastructure: input.infrastructure, database: live, object, ...dumped, tables, startedAt, finishedAt: new Date().toISOString() };
        await loc.s3.send(new PutObjectCommand({ Bucket: loc.bucket, Key: loc.manifestKey(input.key), Body: JSON.stringify(manifest, null, 2), ContentType: 'application/json' }));
        return result(loc, manifest, false);
      });
    },

    /** Marks the key as in use by this run, so pruning leaves it alone. */
    async leaseBackup(input: { system: string; key: string }): Promise<void> {
      checkKey(input.key);
      const loc = location(input.system);
      const run = currentRun();
      await loc.s3.send(new PutObjectCommand({ Bucket: loc.bucket, Key: `${loc.leasePrefix(input.key)}${encodeURIComponent(run.workflowId)}`, Body: JSON.stringify({ workflowId: run.workflowId, runId: run.runId, since: new Date().toISOString() }), ContentType: 'application/json' }));
    },

    async releaseBackup(input: { system: string; key: string }): Promise<void> {
      checkKey(input.key);
      const loc = location(input.system);
      const run = currentRun();
      await loc.s3.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: `${loc.leasePrefix(input.key)}${encodeURIComponent(run.workflowId)}` }));
    },

    /**
     * Creates the empty database a restore goes into, beside the standby's live one (a leftover from an interrupted
     * attempt is dropped first), before the backup is there: dataSync has it made while its backup runs.
     */
    async prepareRestore(input: { system: string; infrastructure: string }): Promise<{ database: string }> {
      await assertReceiver(deps, input.system, input.infrastructure);
      const { db, live, incoming } = databaseOf(input.system, input.infrastructure);
      await beating(() => postgres.recreateDatabase(db, incoming, { like: live }));
      return { database: incoming };
    },

    /**
     * Downloads and checks the backup, then restores it into a new database beside the standby's live one: one
     * made now (a leftover from an interrupted attempt is dropped first) or, on a first try, the one
     * prepareRestore made for this run (`prepared`). The live database is not touched.
     */
    async restoreToScratch(input: { system: string; infrastructure: string; key: string; prepared?: boolean }): Promise<{ key: string; size: number; sha256: string; database: string }> {
      checkKey(input.key);
      const loc = location(input.system);
      const [, m] = await Promise.all([assertReceiver(deps, input.system, input.infrastructure), manifestOf(loc, input.key)]);
      if (!m) throw new BackupNotFound(`no complete backup ${input.key} of ${input.system} in s3://${loc.bucket}/${loc.prefix} (a backup without its manifest was interrupted)`);
      // A retry may find the prepared database part-filled by the attempt before it: it starts from a new one.
      const fresh = input.prepared && Context.current().info.attempt === 1;
      return beating(async (progress) => {
        const object = await checkedObject(loc, m, input.key, fresh ? 'the live database was not touched' : undefined);
        const { db, live, incoming } = databaseOf(input.system, input.infrastructure);
        if (!fresh) {
          Object.assign(progress, { phase: 'new database' });
          await postgres.recreateDatabase(db, incoming, { like: live });
        }
        const { restored, problem } = await streamRestore(loc, m, object, { db, database: incoming }, progress);
        if (problem) {
          // Never verified nor swapped in; dropped now so that no one mistakes it for a restore.
          await postgres.dropDatabase(db, incoming);
          throw corruptBackup(loc, input.key, problem, `the live database was not touched and ${incoming} was dropped`);
        }
        if (restored.code !== 0) throw toolFailure(`pg_restore of ${input.key} into ${incoming}`, restored);
        return { key: input.key, size: m.size, sha256: m.sha256, database: incoming };
      });
    },

    /** Row counts against the backup's, and the inventory's check queries, on the restored database; then marks it verified. */
    async verifyRestore(input: { system: string; infrastructure: string; key: string }): Promise<{ tables: number; rows: number; checks: { name: string; ok: boolean; value: string | null }[] }> {
      const loc = location(input.system);
      const m = await manifestOf(loc, input.key);
      if (!m) throw new BackupNotFound(`the manifest of backup ${input.key} is gone`);
      const { db, incoming } = databaseOf(input.system, input.infrastructure);
      return beating(async (progress) => {
        progress.phase = 'row counts and checks';
        const problems: string[] = [];
        const judge = ({ counts, checks }: { counts: Record<string, number>; checks: CheckOutcome[] }) => {
          for (const [table, n] of Object.entries(m.tables)) {
            if (!(table in counts)) problems.push(`${table}: missing`);
            else if (counts[table] !== n) problems.push(`${table}: ${counts[table]} rows, the backup has ${n}`);
          }
          for (const table of Object.keys(counts)) if (!(table in m.tables)) problems.push(`${table}: not in the backup`);
          for (const c of checks.filter((x) => !x.ok)) problems.push(`check ${c.name}: got ${c.value ?? 'no row'}${c.expect !== undefined ? `, want ${c.expect}` : ''}`);
          // Marked verified in the same session, only when nothing is wrong.
          return problems.length ? undefined : marker(input.system, input.key, m.sha256);
        };
        let found;
        try {
          found = await postgres.rowCountsAndChecks(db, incoming, db.checks, { signal: Context.current().cancellationSignal, comment: judge });
        } catch (err) {
          // Asked only when the session failed: the happy path opens one connection, not two.
          if (!(await postgres.databases(db, [incoming]))[incoming]) throw new RestoreMissing(`${incoming} does not exist: restore it again`);
          throw err;
        }
        const { counts, checks } = found;
        if (problems.length) {
          throw new VerifyFailed(`the restore of ${input.key} into ${incoming} does not match the backup (${problems.length} problem(s)): ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? '; …' : ''}; the live database was not touched`);
        }
        return { tables: Object.keys(counts).length, rows: sum(counts), checks: checks.map(({ name, ok, value }) => ({ name, ok, value })) };
      });
    },

    /**
     * Swaps the verified database in for the live one (both renames in one transaction), then drops the previous
     * data. A retry after the swap finds the live database bearing this run's marker and only finishes the drop.
     */
    async swapInRestore(input: { system: string; infrastructure: string; key: string }): Promise<{ database: string; resumed: boolean }> {
      const loc = location(input.system);
      const [, m] = await Promise.all([assertReceiver(deps, input.system, input.infrastructure), manifestOf(loc, input.key)]);
      if (!m) throw new BackupNotFound(`the manifest of backup ${input.key} is gone`);
      const expected = marker(input.system, input.key, m.sha256);
      const { db, live, incoming, old } = databaseOf(input.system, input.infrastructure);
      return beating(async (progress) => {
        // One session for the look and the swap.
        const session = await postgres.session(db, MAINTENANCE_DB);
        try {
          const infos = await postgres.databases(db, [live, incoming, old], session);
          let resumed = false;
          if (infos[incoming]) {
            if (infos[incoming].comment !== expected) throw new RestoreNotVerified(`${incoming} was not verified by this run: restore and verify it again`);
            progress.phase = 'swap, and drop the previous data';
            await postgres.swapDatabases(db, { live, incoming, old }, { dropOld: true, via: session });
          } else if (infos[live]?.comment === expected) {
            resumed = true;
            progress.phase = 'drop the previous data';
            await postgres.dropDatabase(db, old, session);
          } else {
            throw new RestoreMissing(`nothing to swap in: ${incoming} does not exist and ${live} is not this run's restore`);
          }
          await session.end();
          return { database: live, resumed };
        } finally {
          session.kill();
        }
      });
    },

    /** Undo for a restore that did not reach the swap. */
    async dropRestore(input: { system: string; infrastructure: string }): Promise<void> {
      const { db, incoming } = databaseOf(input.system, input.infrastructure);
      await beating(() => postgres.dropDatabase(db, incoming));
    },

    async listBackups(input: { system: string }): Promise<{ location: string; backups: BackupEntry[]; timezone: string; retention: { days: number; keep: number } }> {
      const loc = location(input.system);
      const found = new Map<string, BackupEntry>();
      for (const obj of await listAll(loc, loc.prefix)) {
        const match = /^([0-9]{8}(?:[0-9]{4})?)\.(dump|json)$/.exec(obj.Key.slice(loc.prefix.length));
        if (!match || !backupKeyKind(match[1])) continue;
        const entry = found.get(match[1]) ?? { key: match[1], complete: false };
        if (match[2] === 'dump') entry.size = obj.Size;
        else entry.complete = true;
        found.set(match[1], entry);
      }
      const backups = [...found.values()].sort((a, b) => a.key.localeCompare(b.key));
      return { location: `s3://${loc.bucket}/${loc.prefix}`, backups, timezone: loc.sys.timezone, retention: loc.sys.backups?.retention ?? { days: 30, keep: 7 } };
    },

    /** Deletes backups (manifest first, so a half-deleted one is incomplete, never wrong); a key a running restore holds is kept. */
    async deleteBackups(input: { system: string; keys: string[] }): Promise<{ deleted: string[]; inUse: { key: string; by: string[] }[] }> {
      input.keys.forEach(checkKey);
      const loc = location(input.system);
      const deleted: string[] = [];
      const inUse: { key: string; by: string[] }[] = [];
      const stop = heartbeatEvery(5_000, () => ({ deleted: deleted.length, of: input.keys.length }));
      try {
        for (const key of input.keys) {
          // Asked per key right before its deletion, so a restore that started meanwhile is seen.
          const by = await holders(loc, key);
          if (by.length) {
            inUse.push({ key, by });
            continue;
          }
          await loc.s3.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.manifestKey(key) }));
          await loc.s3.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.dumpKey(key) }));
          deleted.push(key);
        }
      } finally {
        stop();
      }
      return { deleted, inUse };
    },
  };
}
