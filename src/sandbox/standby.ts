// The sandbox's hot standby, when PostgreSQL, moto_server and rclone are installed: system `gigadb` on two
// infrastructures `hk` and `eu`, each an sshd node serving its release marker, a PostgreSQL cluster (production's
// with data) and a file store; moto for the backups' S3 bucket, the Elastic IPs and the Route53 zone whose records
// the release swaps; and safeMigration's application `notes` on hk's node and cluster. Everything runs as a
// daemon with a pid file under sandbox/, as the rest of the sandbox does.
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AllocateAddressCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand, ListHostedZonesByNameCommand, Route53Client } from '@aws-sdk/client-route-53';
import { CreateBucketCommand, S3Client, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { Client } from 'pg';
import type { FleetHost } from './fleet';
import { markerDir, MOTO_URL, notesDir, notesRestart, SANDBOX, SANDBOX_FILES } from './layout';
import { MOTO_CREDENTIALS, motoReady, spawnMoto } from './moto';
import { appPid, appPidFile, ensureDataApp, ensureNodeFiles, stopApp } from './apps';
import { findOnPath } from './paths';
import { clusterPidFile, findPostgresBinDir, initCluster, startCluster, stopCluster } from './postgres';
import { keepDaemon, livePid, portOpen, stopPid, until } from './processes';
import { giveToSudoUser } from './sudoUser';

const S = SANDBOX.standby;
export type StandbyInfra = (typeof S.infra)[number];

/** What the hot standby needs and the machine lacks (programs looked up on `searchPath`); empty: `up` builds it. */
export function standbyMissing(searchPath?: string): string[] {
  const missing: string[] = [];
  if (!findPostgresBinDir()) missing.push('apt-get install postgresql');
  if (!findOnPath('moto_server', searchPath)) missing.push("pip install 'moto[server]'");
  if (!findOnPath('rclone', searchPath)) missing.push('apt-get install rclone');
  return missing;
}

/** What `up` says about the hot standby: how to run it, or what to install for it. */
export function standbyNote(missing: string[]): string {
  return missing.length
    ? `left out: the hot standby and data sync (hotStandbyRelease, dataSync, backupDatabase, restoreDatabase, pruneBackups, pauseDataSync, safeMigration); for them: ${missing.join('; ')}, then up again`
    : 'hot standby: run `npx opsflow schedule apply` once, then: npx opsflow start hotStandbyRelease --input examples/sandbox/hotStandbyRelease.json';
}

const pgPidMarker = 'postgres';
const markerPid = (host: FleetHost) => path.join(markerDir(host), 'server.pid');

async function query(infra: StandbyInfra, database: string, sql: string): Promise<unknown[]> {
  const client = new Client({ host: '127.0.0.1', port: infra.pgPort, user: S.dbUser, database });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Production's database with data (the release's check wants datasets), an older copy on the standby. */
async function ensurePostgres(infra: StandbyInfra, production: boolean): Promise<void> {
  const base = SANDBOX_FILES.postgres(infra.name);
  mkdirSync(path.dirname(base), { recursive: true, mode: 0o755 });
  const created = initCluster({ base, port: infra.pgPort, user: S.dbUser });
  if (!livePid(clusterPidFile(base), pgPidMarker)) startCluster(base);
  if (!created) return;
  await query(infra, 'postgres', 'CREATE DATABASE gigadb');
  await query(
    infra,
    'gigadb',
    production
      ? "CREATE TABLE datasets (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO datasets (title) SELECT 'dataset ' || g FROM generate_series(1, 500) g"
      : "CREATE TABLE datasets (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO datasets (title) VALUES ('old')",
  );
}

/** The node's release marker and health file, served over HTTP as the release's checks read them. */
async function ensureMarker(host: FleetHost): Promise<void> {
  const dir = markerDir(host);
  ensureNodeFiles(dir, { 'release.txt': 'v1', healthy: 'ok\n' });
  if (livePid(markerPid(host), 'http.server')) return;
  keepDaemon(spawn('python3', ['-m', 'http.server', '--bind', host.address, '--directory', dir, String(SANDBOX.appPort)], { detached: true, stdio: 'ignore' }), markerPid(host));
  await until(`the release marker on ${host.address}:${SANDBOX.appPort}`, () => portOpen(host.address, SANDBOX.appPort));
}

/**
 * safeMigration's application: database `notes` on production's cluster (50 notes), and the demo data app on
 * its node, reading it and refusing writes while its READONLY flag exists.
 */
async function ensureNotes(host: FleetHost): Promise<void> {
  const [production] = S.infra;
  if (!(await query(production, 'postgres', "SELECT 1 FROM pg_database WHERE datname = 'notes'")).length) {
    await query(production, 'postgres', 'CREATE DATABASE notes');
    await query(production, 'notes', "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 50) g");
  }
  const dir = notesDir(host);
  // The app reads a password file; the cluster trusts loopback, so it is empty.
  const config = { database: { host: '127.0.0.1', port: production.pgPort, user: S.dbUser, name: 'notes', passwordFile: path.join(dir, 'pw') }, readOnlyFlag: path.join(dir, 'READONLY') };
  ensureDataApp(dir, { pw: '', 'config.json': `${JSON.stringify(config)}\n` }, notesRestart(host));
}

const aws = <T>(C: new (o: object) => T, region: string) => new C({ region, endpoint: MOTO_URL, credentials: MOTO_CREDENTIALS });

/** moto's state lives in its memory: a fresh moto gets the bucket, the Elastic IPs and the zone with production's records. */
async function ensureMoto(): Promise<void> {
  if (livePid(SANDBOX_FILES.motoPid, 'moto_server')) return;
  mkdirSync(path.dirname(SANDBOX_FILES.motoPid), { recursive: true, mode: 0o755 });
  const log = openSync(path.join(path.dirname(SANDBOX_FILES.motoPid), 'moto.log'), 'a');
  keepDaemon(spawnMoto(S.motoPort, { detached: true, stdio: ['ignore', log, log] }), SANDBOX_FILES.motoPid);
  closeSync(log);
  await until(`moto on ${MOTO_URL}`, () => motoReady(MOTO_URL), 60_000);
  const [production] = S.infra;
  await aws(S3Client, production.region).send(new CreateBucketCommand({ Bucket: S.bucket, CreateBucketConfiguration: { LocationConstraint: production.region as BucketLocationConstraint } }));
  const addresses: Record<string, Record<string, string>> = {};
  for (const infra of S.infra) {
    addresses[infra.name] = {};
    for (const record of S.records) {
      const a = await aws(EC2Client, infra.region).send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: [{ Key: 'Name', Value: `eip-${record}` }] }] }));
      addresses[infra.name][record] = a.PublicIp as string;
    }
  }
  const r53 = aws(Route53Client, 'us-east-1');
  const zone = await r53.send(new CreateHostedZoneCommand({ Name: S.zone, CallerReference: `opsflow-sandbox-${Date.now()}` }));
  await r53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zone.HostedZone?.Id,
      ChangeBatch: { Changes: S.records.map((n) => ({ Action: 'UPSERT', ResourceRecordSet: { Name: `${n}.`, Type: 'A', TTL: 60, ResourceRecords: [{ Value: addresses[production.name][n] }] } })) },
    }),
  );
}

/** The Route53 zone's id in moto (it changes with every fresh moto, so the inventory is rewritten at each `up`). */
export async function standbyZoneId(): Promise<string> {
  const res = await aws(Route53Client, 'us-east-1').send(new ListHostedZonesByNameCommand({ DNSName: S.zone }));
  const zone = res.HostedZones?.find((z) => z.Name === `${S.zone}.`);
  if (!zone?.Id) throw new Error(`no zone ${S.zone} in moto`);
  return zone.Id.replace('/hostedzone/', '');
}

/** Files for dataSync to copy: production's store has 20, the standby's the first 15 (last night's sync). */
function ensureFiles(): void {
  for (const [i, infra] of S.infra.entries()) {
    const store = SANDBOX_FILES.files(infra.name);
    if (existsSync(store)) continue;
    mkdirSync(path.join(store, 'datasets'), { recursive: true });
    for (let n = 1; n <= (i === 0 ? 20 : 15); n++) writeFileSync(path.join(store, 'datasets', `dataset${n}.txt`), `dataset ${n}\n`);
    giveToSudoUser(store);
  }
}

/** The AWS profile `sandbox` with moto's keys: static, and not secret (moto takes any). */
function writeCredentials(): void {
  writeFileSync(SANDBOX_FILES.awsCredentials, `[sandbox]\naws_access_key_id = ${MOTO_CREDENTIALS.accessKeyId}\naws_secret_access_key = ${MOTO_CREDENTIALS.secretAccessKey}\n`);
  chmodSync(SANDBOX_FILES.awsCredentials, 0o600);
  giveToSudoUser(SANDBOX_FILES.awsCredentials);
}

/** Starts what of the hot standby does not run (idempotent); `hosts` are its infrastructures' nodes, in S.infra's order. */
export async function ensureStandby(hosts: FleetHost[]): Promise<void> {
  for (const [i, infra] of S.infra.entries()) await ensurePostgres(infra, i === 0);
  for (const host of hosts) await ensureMarker(host);
  await ensureNotes(hosts[0]);
  await ensureMoto();
  ensureFiles();
  writeCredentials();
}

/** One line per piece of the hot standby. */
export function standbyStatus(hosts: FleetHost[]): string[] {
  return [
    ...S.infra.map((infra, i) => {
      const pg = livePid(clusterPidFile(SANDBOX_FILES.postgres(infra.name)), pgPidMarker) ? 'running' : 'stopped';
      const marker = hosts[i] && livePid(markerPid(hosts[i]), 'http.server') ? 'running' : 'stopped';
      return `  ${infra.name.padEnd(8)} ssh ${hosts[i]?.address ?? '-'}:${SANDBOX.sshPort}; release marker :${SANDBOX.appPort} ${marker}; PostgreSQL 127.0.0.1:${infra.pgPort} ${pg}`;
    }),
    `  notes    http://${hosts[0]?.address}:${S.notesPort} ${hosts[0] && appPid(notesDir(hosts[0])) ? 'running' : 'stopped'} (safeMigration's application, on database notes of ${S.infra[0].name})`,
    `  moto     ${MOTO_URL} ${livePid(SANDBOX_FILES.motoPid, 'moto_server') ? 'running' : 'stopped'} (S3 ${S.bucket}, Route53 ${S.zone}, Elastic IPs)`,
  ];
}

/** Stops the hot standby's processes; returns what it stopped. */
export async function stopStandby(hosts: FleetHost[]): Promise<string[]> {
  const stopped: string[] = [];
  if (hosts[0] && (await stopApp(notesDir(hosts[0])))) stopped.push('notes app');
  for (const [i, host] of hosts.entries()) {
    const pid = livePid(markerPid(host), 'http.server');
    if (pid) {
      await stopPid(pid);
      stopped.push(`release marker on ${S.infra[i].name}`);
    }
  }
  for (const infra of S.infra) {
    const base = SANDBOX_FILES.postgres(infra.name);
    if (!livePid(clusterPidFile(base), pgPidMarker)) continue;
    stopCluster(base);
    stopped.push(`PostgreSQL ${infra.name}`);
  }
  const moto = livePid(SANDBOX_FILES.motoPid, 'moto_server');
  if (moto) {
    await stopPid(moto);
    stopped.push('moto');
  }
  return stopped;
}

export function standbyPidFiles(hosts: FleetHost[]): string[] {
  return [SANDBOX_FILES.motoPid, ...S.infra.map((i) => clusterPidFile(SANDBOX_FILES.postgres(i.name))), ...hosts.map(markerPid), ...hosts.slice(0, 1).map((h) => appPidFile(notesDir(h)))];
}
