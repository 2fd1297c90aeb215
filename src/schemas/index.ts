// Every workflow opsflow offers, with its input schema and a ready-to-paste example. The CLI's `schema`,
// `example` and `start` read this; the examples in the README and docs/ are tested against it.
import type { z } from 'zod';
import backupDatabaseExample from '../../examples/backupDatabase.json';
import blueGreenDeployExample from '../../examples/blueGreenDeploy.json';
import customerRolloutExample from '../../examples/customerRollout.json';
import dataSyncExample from '../../examples/dataSync.json';
import fleetRunExample from '../../examples/fleetRun.json';
import hotStandbyReleaseExample from '../../examples/hotStandbyRelease.json';
import k8sDeployExample from '../../examples/k8sDeploy.json';
import memcachedPoolExample from '../../examples/memcachedPool.json';
import pauseDataSyncExample from '../../examples/pauseDataSync.json';
import pruneBackupsExample from '../../examples/pruneBackups.json';
import restoreDatabaseExample from '../../examples/restoreDatabase.json';
import rollbackReleaseExample from '../../examples/rollbackRelease.json';
import rollingUpgradeExample from '../../examples/rollingUpgrade.json';
import safeMigrationExample from '../../examples/safeMigration.json';
import { backupDatabaseInput, pruneBackupsInput, restoreDatabaseInput } from './backups';
import { customerRolloutInput } from './customerRollout';
import { dataSyncInput, pauseDataSyncInput } from './dataSync';
import { fleetRunInput } from './fleetRun';
import { hotStandbyReleaseInput } from './hotStandbyRelease';
import { k8sDeployInput, releaseOf } from './k8sDeploy';
import { memcachedPoolInput } from './memcachedPool';
import { blueGreenDeployInput, rollbackReleaseInput } from './release';
import { rollingUpgradeInput } from './rollingUpgrade';
import { safeMigrationInput } from './safeMigration';

export interface WorkflowEntry {
  description: string;
  input: z.ZodType;
  example: Record<string, unknown>;
  /** One line for the Temporal UI's run list. */
  summary(input: Record<string, unknown>): string;
  labels(input: Record<string, unknown>): { environment?: string; service?: string; release?: string };
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

export const WORKFLOWS: Record<string, WorkflowEntry> = {
  fleetRun: {
    description: 'run one command on every host of a group, with concurrency, an error budget and optional approval',
    input: fleetRunInput,
    example: fleetRunExample,
    summary: (i) => `fleetRun ${str(i.environment) ?? '?'}: ${Array.isArray(i.command) ? i.command.join(' ').slice(0, 80) : '?'}`,
    labels: (i) => ({ environment: str(i.environment), service: str(i.service) }),
  },
  blueGreenDeploy: {
    description: 'zero-downtime release to the nodes of a service behind HAProxy, blue node first, with rollback',
    input: blueGreenDeployInput,
    example: blueGreenDeployExample,
    summary: (i) => `deploy ${str(i.service) ?? '?'} ${str((i.release as { id?: unknown } | undefined)?.id) ?? '?'} to ${str(i.environment) ?? '?'}`,
    labels: (i) => ({ environment: str(i.environment), service: str(i.service), release: str((i.release as { id?: unknown } | undefined)?.id) }),
  },
  rollbackRelease: {
    description: "put a service's nodes back on an earlier release (default: each node's previous one)",
    input: rollbackReleaseInput,
    example: rollbackReleaseExample,
    summary: (i) => `roll back ${str(i.service) ?? '?'} in ${str(i.environment) ?? '?'}${str(i.to) ? ` to ${str(i.to)}` : ''}`,
    labels: (i) => ({ environment: str(i.environment), service: str(i.service), release: str(i.to) }),
  },
  k8sDeploy: {
    description: "set a release's images on a service's Kubernetes deployments in order, watch the pods, and roll back to the recorded revisions on failure",
    input: k8sDeployInput,
    example: k8sDeployExample,
    summary: (i) => `k8s deploy ${str(i.service) ?? '?'} ${releaseOf(i) ?? ''} to ${str(i.environment) ?? '?'}`,
    labels: (i) => ({ environment: str(i.environment), service: str(i.service), release: releaseOf(i) }),
  },
  rollingUpgrade: {
    description: 'upgrade hosts one at a time in a fixed order, rebooting and checking each, stopping at the first that fails',
    input: rollingUpgradeInput,
    example: rollingUpgradeExample,
    summary: (i) => `rolling upgrade in ${str(i.environment) ?? '?'}: ${Array.isArray(i.order) ? i.order.join(', ').slice(0, 80) : '?'}`,
    labels: (i) => ({ environment: str(i.environment) }),
  },
  memcachedPool: {
    description: 'replace memcached servers: check the new one, then rewrite the pool file and restart each client in turn, verifying through the application',
    input: memcachedPoolInput,
    example: memcachedPoolExample,
    summary: (i) => `memcached pool in ${str(i.environment) ?? '?'}: ${Array.isArray(i.pool) ? i.pool.join(', ').slice(0, 80) : '?'}`,
    labels: (i) => ({ environment: str(i.environment), service: 'memcached' }),
  },
  customerRollout: {
    description: 'a release for many customers: staging for each (child deploys, a few at a time), one promote gate, then production',
    input: customerRolloutInput,
    example: customerRolloutExample,
    summary: (i) => `roll out ${str((i.release as { id?: unknown } | undefined)?.id) ?? '?'} to ${Array.isArray(i.customers) ? i.customers.join(', ').slice(0, 80) : '?'}`,
    labels: (i) => ({ environment: str((i.stages as { production?: unknown } | undefined)?.production) ?? 'production', release: str((i.release as { id?: unknown } | undefined)?.id) }),
  },
  safeMigration: {
    description: 'run a migration on a restored copy of a database, never on live data, then switch the application to it',
    input: safeMigrationInput,
    example: safeMigrationExample,
    summary: (i) => `migrate ${str(i.application) ?? '?'}: ${str((i.migration as { id?: unknown } | undefined)?.id) ?? '?'}`,
    labels: (i) => ({ service: str(i.application), release: str((i.migration as { id?: unknown } | undefined)?.id) }),
  },
  dataSync: {
    description: "copy production's file store (rclone) and database (backup, restore) to the hot standby, verified",
    input: dataSyncInput,
    example: dataSyncExample,
    summary: (i) => `sync ${str(i.system) ?? '?'}: ${Array.isArray(i.stores) ? i.stores.join(' and ') : 'files and database'}`,
    labels: (i) => ({ service: str(i.system) }),
  },
  backupDatabase: {
    description: "dump a system's database (production's by default) to S3 under a backup key, with size, sha256 and row counts",
    input: backupDatabaseInput,
    example: backupDatabaseExample,
    summary: (i) => `back up ${str(i.system) ?? '?'}${str(i.key) ? ` as ${str(i.key)}` : ''}`,
    labels: (i) => ({ service: str(i.system) }),
  },
  restoreDatabase: {
    description: "replace the standby's database with a backup: checked, restored beside it, verified, swapped in",
    input: restoreDatabaseInput,
    example: restoreDatabaseExample,
    summary: (i) => `restore ${str(i.system) ?? '?'} backup ${str(i.key) ?? '?'}`,
    labels: (i) => ({ service: str(i.system) }),
  },
  pruneBackups: {
    description: "delete a system's backups past their retention, never one a running restore uses",
    input: pruneBackupsInput,
    example: pruneBackupsExample,
    summary: (i) => `prune backups of ${str(i.system) ?? '?'}`,
    labels: (i) => ({ service: str(i.system) }),
  },
  pauseDataSync: {
    description: "pause a system's nightly sync schedules for a while; they resume by themselves",
    input: pauseDataSyncInput,
    example: pauseDataSyncExample,
    summary: (i) => `pause ${str(i.system) ?? '?'} sync for ${str(i.for) ?? '?'}`,
    labels: (i) => ({ service: str(i.system) }),
  },
  hotStandbyRelease: {
    description: 'release across two infrastructures: embargo, backup, restore on the standby, deploy, validation, DNS swap (or simple: standby then production)',
    input: hotStandbyReleaseInput,
    example: hotStandbyReleaseExample,
    summary: (i) => `${str(i.kind) ?? '?'} release ${str(i.release) ?? '?'} of ${str(i.system) ?? '?'}`,
    labels: (i) => ({ service: str(i.system), release: str(i.release) }),
  },
};

export function workflowEntry(name: string): WorkflowEntry {
  const entry = WORKFLOWS[name];
  if (!entry) throw new Error(`unknown workflow "${name}" (known: ${Object.keys(WORKFLOWS).join(', ')})`);
  return entry;
}
