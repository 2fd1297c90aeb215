import { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { embargoGuard } from '../activities/roles';
import { SshPool } from '../activities/ssh/pool';
import { TASK_QUEUE } from '../common/constants';
import type { Inventory } from '../config/inventory';
import { slackClient, slackFromEnv, type SlackSettings } from '../slack/settings';
import { dataConverterFromEnv, type TemporalTarget } from '../temporal/connection';
import { errorInterceptor, heartbeatInterceptor } from './interceptors';

export interface OpsWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  inventory: Inventory;
  taskQueue?: string;
  /** Slack for gate messages and announcements; default from SLACK_BOT_TOKEN (and SLACK_API_URL). */
  slack?: SlackSettings;
  /** A prebuilt workflow bundle; otherwise the workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Runs kept in memory between tasks; default from OPSFLOW_WORKER_CACHE, else DEFAULT_MAX_CACHED_WORKFLOWS. */
  maxCachedWorkflows?: number;
}

/**
 * Runs kept in memory between tasks. Past the cap the least recently used run is evicted and replays its history
 * when its gate is answered (about 55 ms at 1,000 parked runs, bench `parked`). Uncapped, a parked run held about
 * 1.7 MiB of the worker's RSS; 250 of them is about 450 MiB.
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 250;

/** A cache size from a flag or OPSFLOW_WORKER_CACHE: a whole number ≥ 0 (0 turns the cache off). */
export function parseCacheSize(value: string, name: string): number {
  if (!/^\d+$/.test(value.trim())) throw new Error(`${name}: expected a whole number of cached runs (0 or more), got ${JSON.stringify(value)}`);
  return Number(value);
}

function cacheSizeFromEnv(): number {
  const raw = process.env.OPSFLOW_WORKER_CACHE;
  return raw === undefined || raw === '' ? DEFAULT_MAX_CACHED_WORKFLOWS : parseCacheSize(raw, 'OPSFLOW_WORKER_CACHE');
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
}

export async function createOpsWorker(opts: OpsWorkerOptions): Promise<{ worker: Worker; ssh: SshPool }> {
  // Activities that read or steer other runs (roles registry, schedules) use the worker's own connection.
  const dataConverter = dataConverterFromEnv();
  const temporal = new Client({ connection: opts.connection, namespace: opts.namespace, dataConverter });
  const ssh = new SshPool({ knownHostsFile: opts.inventory.knownHostsFile, guard: embargoGuard({ inventory: opts.inventory, temporal }) });
  const slackSettings = opts.slack ?? slackFromEnv();
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    // Payload encryption when OPSFLOW_CODEC_KEYS / OPSFLOW_CODEC_KEY_FILE is set (see src/codec).
    dataConverter,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities({
      inventory: opts.inventory,
      ssh,
      slack: slackSettings && slackClient(slackSettings),
      temporal,
    }),
    interceptors: { activity: [errorInterceptor, heartbeatInterceptor] },
    // Fleet batches spend their time waiting on remote hosts, not on this process.
    maxConcurrentActivityTaskExecutions: 200,
    maxCachedWorkflows: opts.maxCachedWorkflows ?? cacheSizeFromEnv(),
  });
  return { worker, ssh };
}

/** Runs until the worker is shut down (SIGINT/SIGTERM are handled by the SDK), then closes SSH connections. */
export async function runOpsWorker(opts: OpsWorkerOptions): Promise<void> {
  const { worker, ssh } = await createOpsWorker(opts);
  try {
    await worker.run();
  } finally {
    await ssh.closeAll();
  }
}
