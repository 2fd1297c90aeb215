// Data and multi-infrastructure parts of the inventory: AWS accounts, databases, and "systems" — an application
// run on two identical infrastructures that swap the roles production and hot standby (the GigaDB runbook).
// Secrets are never in the file: credentials come from AWS profiles or named environment variables.
import { z } from 'zod';
import { isTimeZone } from '../schemas/backupKey';
import { argv, duration, name } from '../schemas/common';

const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

/** One set of AWS credentials and a region, like a profile in ~/.aws/config. */
export const awsAccountSchema = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as eu-west-3'),
  /** A profile of ~/.aws/credentials / ~/.aws/config; absent: the SDK's default chain. */
  profile: z.string().min(1).optional(),
  /** The shared credentials file holding `profile`, instead of ~/.aws/credentials (the sandbox's, for moto). */
  credentialsFile: z.string().min(1).optional(),
  /** Names of environment variables holding static credentials (instead of a profile). */
  accessKeyIdEnv: envVarName.optional(),
  secretAccessKeyEnv: envVarName.optional(),
  /** An endpoint other than AWS's own, e.g. an emulator; the code path is otherwise the same. */
  endpoint: z.url().optional(),
});
export type AwsAccount = z.output<typeof awsAccountSchema>;

/** Where a tool runs: on an inventory host over SSH, or (absent) on the worker's own machine. */
export const runOnSchema = z.strictObject({ environment: name, host: name });
export type RunOn = z.output<typeof runOnSchema>;

export const checkQuerySchema = z.strictObject({
  name: name,
  /** Returns one row, one column. */
  sql: z.string().min(1),
  /** The value the query must return, compared as text; absent: it must return a row. */
  expect: z.string().optional(),
});
export type CheckQuery = z.output<typeof checkQuerySchema>;

/** A PostgreSQL database, as the tools (pg_dump, pg_restore, psql) reach it from where they run. */
export const databaseSchema = z.strictObject({
  engine: z.literal('postgresql').default('postgresql'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5432),
  database: name,
  user: z.string().min(1),
  /** Environment variable on the worker holding the password; sent to the tool as PGPASSWORD, never logged. */
  passwordEnv: envVarName.optional(),
  /** Run the tools on this host over SSH; absent: on the worker. */
  runOn: runOnSchema.optional(),
  /**
   * The directory of psql, pg_dump and pg_restore where the tools run; absent: found on PATH. On Debian and Ubuntu
   * those on PATH are postgresql-common's Perl wrapper, ~30 ms a call before the program starts;
   * /usr/lib/postgresql/<version>/bin holds the programs themselves.
   */
  bin: z.string().regex(/^\/[^\0\n]*$/, 'an absolute directory').optional(),
  /** Verification after a restore or migration, besides comparing row counts per table. */
  checks: z.array(checkQuerySchema).default([]),
  /**
   * pg_dump's gzip level for backups (0 none … 9 smallest). pg_dump's own default (6) spends most of a dump's time
   * compressing: level 1 dumps in half the time for a dump about a fifth larger (docs/performance.md).
   */
  dumpCompression: z.number().int().min(0).max(9).default(1),
});
export type DatabaseConfig = z.output<typeof databaseSchema>;

/** A command on a host of the infrastructure's environment, e.g. a maintenance switch or a deploy script. */
export const hostCommandSchema = z.strictObject({ host: name, command: argv, sudo: z.boolean().default(false) });
export type HostCommand = z.output<typeof hostCommandSchema>;

const dnsTarget = z.union([
  z.strictObject({ address: z.ipv4() }),
  /** An Elastic IP by its Name tag, looked up in the infrastructure's AWS account and region. */
  z.strictObject({ eip: z.string().min(1) }),
]);

const blueGreenDeploySchema = z.strictObject({
  blueGreenDeploy: z
    .strictObject({
      service: name,
      git: z.strictObject({ repo: z.string().min(1), ref: z.string().min(1).default('{release}') }).optional(),
      tarball: z.string().min(1).optional(),
    })
    .refine((d) => !!d.git !== !!d.tarball, { message: 'give exactly one of git or tarball' }),
});
const k8sDeploySchema = z.strictObject({
  /** A service of the environment's kubernetes section; `{release}` in the image becomes the release id. */
  k8sDeploy: z.strictObject({ service: name, image: z.string().min(1) }),
});

export const httpCheckSchema = z.strictObject({
  url: z.string().min(1),
  status: z.number().int().default(200),
  body: z.string().optional(),
});

export const infrastructureSchema = z.strictObject({
  aws: name,
  /** The inventory environment holding this infrastructure's hosts. */
  environment: name.optional(),
  database: name.optional(),
  /** The file store as an rclone path: a local directory, `remote:path`, or an S3 bucket path. */
  files: z.string().min(1).optional(),
  /** A host of this infrastructure's environment that runs rclone when this infrastructure receives the files (the runbook: the standby pulls); absent: the worker. */
  rcloneOn: name.optional(),
  /** Where the business validates a release on this infrastructure. */
  url: z.string().min(1).optional(),
  /** For every record of the system's DNS set: this infrastructure's address. */
  addresses: z.record(z.string().min(1), dnsTarget).default({}),
  maintenance: z.strictObject({ on: hostCommandSchema, off: hostCommandSchema }).optional(),
  /**
   * Deploys a release: a command (`{release}` replaced by the release id, as one argument), a child
   * blueGreenDeploy of one of the environment's services, from git (`ref`, default the release id) or a tarball,
   * or a child k8sDeploy of one of its Kubernetes services.
   */
  deploy: z.union([hostCommandSchema, blueGreenDeploySchema, k8sDeploySchema]).optional(),
  checks: z.array(httpCheckSchema).default([]),
});
export type Infrastructure = z.output<typeof infrastructureSchema>;

const dnsSchema = z.discriminatedUnion('provider', [
  z.strictObject({ provider: z.literal('route53'), account: name, zoneId: z.string().min(1), ttl: z.number().int().min(1).default(60) }),
  z.strictObject({
    provider: z.literal('cloudflare'),
    zoneId: z.string().min(1),
    tokenEnv: envVarName,
    apiUrl: z.url().default('https://api.cloudflare.com/client/v4'),
    ttl: z.number().int().min(1).default(60),
  }),
]);

export const systemSchema = z.strictObject({
  /** IANA time zone for schedules and backup keys. */
  timezone: z.string().min(1).refine(isTimeZone, 'an IANA time zone such as Europe/London').default('UTC'),
  infrastructures: z.record(name, infrastructureSchema),
  /** Roles before opsflow first runs; from then on the roles registry holds them. */
  roles: z.strictObject({ production: name, standby: name }),
  dns: dnsSchema.optional(),
  backups: z
    .strictObject({
      account: name,
      bucket: z.string().min(3),
      prefix: z.string().default(''),
      retention: z.strictObject({ days: z.number().int().min(1).default(30), keep: z.number().int().min(1).default(7) }).default({ days: 30, keep: 7 }),
    })
    .optional(),
  /** rclone config file (relative to the inventory) declaring the remotes the `files` paths name. */
  rcloneConfig: z.string().min(1).optional(),
  /** Nightly sync schedules, cron in the system's time zone. */
  schedules: z
    .strictObject({
      files: z.string().min(1).optional(),
      database: z.string().min(1).optional(),
      /** Pruning of old backups; default: the database schedule's. */
      prune: z.string().min(1).optional(),
      /** A run missed (server down) is still taken if the server is back within this window, else skipped. */
      catchupWindow: duration.default('30m'),
    })
    .default({ catchupWindow: '30m' }),
});
export type SystemConfig = z.output<typeof systemSchema>;

type RawEnvironment = { hosts: Record<string, unknown>; services: Record<string, unknown>; kubernetes?: { services: Record<string, unknown> } };

/** Cross-references inside the data sections; called from the inventory's own refinement. */
export function checkSystems(
  raw: { aws: Record<string, AwsAccount>; databases: Record<string, DatabaseConfig>; systems: Record<string, SystemConfig>; environments: Record<string, RawEnvironment> },
  issue: (path: (string | number)[], message: string) => void,
): void {
  const hostKnown = (at: (string | number)[], environment: string | undefined, host: string) => {
    if (!environment) issue(at, 'a host command needs the infrastructure to name its environment');
    else if (!raw.environments[environment]) issue(at, `unknown environment "${environment}"`);
    else if (!raw.environments[environment].hosts[host]) issue(at, `unknown host "${host}" in ${environment}`);
  };
  for (const [dbName, db] of Object.entries(raw.databases)) {
    if (db.runOn) hostKnown(['databases', dbName, 'runOn'], db.runOn.environment, db.runOn.host);
  }
  for (const [sysName, sys] of Object.entries(raw.systems)) {
    const at = ['systems', sysName];
    const infras = Object.keys(sys.infrastructures);
    if (infras.length !== 2) issue([...at, 'infrastructures'], `a system has exactly two infrastructures (has ${infras.length})`);
    for (const role of ['production', 'standby'] as const) {
      if (!sys.infrastructures[sys.roles[role]]) issue([...at, 'roles', role], `unknown infrastructure "${sys.roles[role]}"`);
    }
    if (sys.roles.production === sys.roles.standby) issue([...at, 'roles'], 'production and standby must be different infrastructures');
    const records = new Set(infras.flatMap((i) => Object.keys(sys.infrastructures[i].addresses)));
    for (const [infraName, infra] of Object.entries(sys.infrastructures)) {
      const iat = [...at, 'infrastructures', infraName];
      if (!raw.aws[infra.aws]) issue([...iat, 'aws'], `unknown AWS account "${infra.aws}"`);
      if (infra.environment && !raw.environments[infra.environment]) issue([...iat, 'environment'], `unknown environment "${infra.environment}"`);
      if (infra.database && !raw.databases[infra.database]) issue([...iat, 'database'], `unknown database "${infra.database}"`);
      const deployCommand = infra.deploy && 'host' in infra.deploy ? infra.deploy : undefined;
      for (const [key, cmd] of [['maintenance.on', infra.maintenance?.on], ['maintenance.off', infra.maintenance?.off], ['deploy', deployCommand]] as const) {
        if (cmd) hostKnown([...iat, ...key.split('.')], infra.environment, cmd.host);
      }
      const child = infra.deploy && !('host' in infra.deploy) ? infra.deploy : undefined;
      if (child) {
        const [workflow, services] = 'blueGreenDeploy' in child ? (['blueGreenDeploy', (e: RawEnvironment) => e.services] as const) : (['k8sDeploy', (e: RawEnvironment) => e.kubernetes?.services ?? {}] as const);
        const service = 'blueGreenDeploy' in child ? child.blueGreenDeploy.service : child.k8sDeploy.service;
        const environment = infra.environment ? raw.environments[infra.environment] : undefined;
        if (!infra.environment) issue([...iat, 'deploy'], `a ${workflow} needs the infrastructure to name its environment`);
        else if (environment && !services(environment)[service]) issue([...iat, 'deploy', workflow, 'service'], `unknown ${workflow === 'k8sDeploy' ? 'Kubernetes ' : ''}service "${service}" in ${infra.environment}`);
      }
      if (infra.rcloneOn) hostKnown([...iat, 'rcloneOn'], infra.environment, infra.rcloneOn);
      // A swap moves every record; one the other side lacks would be left pointing at the old production.
      for (const record of records) {
        if (sys.dns && !infra.addresses[record]) issue([...iat, 'addresses'], `no address for "${record}", which the other infrastructure has`);
      }
    }
    if (sys.dns?.provider === 'route53' && !raw.aws[sys.dns.account]) issue([...at, 'dns', 'account'], `unknown AWS account "${sys.dns.account}"`);
    if (sys.backups && !raw.aws[sys.backups.account]) issue([...at, 'backups', 'account'], `unknown AWS account "${sys.backups.account}"`);
  }
}
