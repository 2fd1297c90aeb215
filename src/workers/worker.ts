import { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { embargoGuard } from '../activities/roles';
import { SshPool } from '../activities/ssh/pool';
import { TASK_QUEUE } from '../common/constants';
import { log } from '../common/log';
import type { Inventory } from '../config/inventory';
import { slackClient, slackFromEnv, type SlackSettings } from '../slack/settings';
import { dataConverterFromEnv, type TemporalTarget } from '../temporal/connection';
import { workflowCode } from './buildId';
import { errorInterceptor, heartbeatInterceptor } from './interceptors';
import { boundHeapGrowth, DEFAULT_MAX_CACHED_WORKFLOWS, WORKFLOW_TASK_SLOTS } from './workflowMemory';
import { wholeNumber, wholeNumberFromEnv } from './settings';
import { gracePeriod, NEVER_CANCEL_AT_SHUTDOWN, shutdownGraceFromEnv } from './shutdown';

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
  /** Seconds a stopping worker lets running steps finish; default from OPSFLOW_WORKER_SHUTDOWN_GRACE, else 60. */
  shutdownGraceS?: number;
}

export { DEFAULT_MAX_CACHED_WORKFLOWS };

/** A cache size from a flag or OPSFLOW_WORKER_CACHE: a whole number ≥ 0 (0 turns the cache off). */
export const parseCacheSize = (value: string, name: string) => wholeNumber(value, name, 'cached runs');

const cacheSizeFromEnv = () => wholeNumberFromEnv('OPSFLOW_WORKER_CACHE', DEFAULT_MAX_CACHED_WORKFLOWS, 'cached runs');

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
}

export async function createOpsWorker(opts: OpsWorkerOptions): Promise<{ worker: Worker; ssh: SshPool }> {
  // Activities that read or steer other runs (roles registry, schedules) use the worker's own connection.
  const dataConverter = dataConverterFromEnv();
  const temporal = new Client({ connection: opts.connection, namespace: opts.namespace, dataConverter });
  const ssh = new SshPool({ knownHostsFile: () => opts.inventory.knownHostsFile, guard: embargoGuard({ inventory: opts.inventory, temporal }) });
  const slackSettings = opts.slack ?? slackFromEnv();
  const { bundle, buildId } = await workflowCode(opts.workflowBundle);
  boundHeapGrowth();
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    // Payload encryption when OPSFLOW_CODEC_KEYS / OPSFLOW_CODEC_KEY_FILE is set (see src/codec).
    dataConverter,
    workflowBundle: bundle,
    buildId,
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
    maxConcurrentWorkflowTaskExecutions: WORKFLOW_TASK_SLOTS,
    ...NEVER_CANCEL_AT_SHUTDOWN,
  });
  return { worker, ssh };
}

/**
 * Runs until the worker is shut down (the SDK turns SIGINT/SIGTERM into worker.shutdown()) and has drained, or
 * its shutdown grace ran out (see ./shutdown), then closes SSH connections. The caller exits the process: a step
 * left running still holds timers and sockets.
 */
export async function runOpsWorker(opts: OpsWorkerOptions): Promise<void> {
  const graceS = opts.shutdownGraceS ?? shutdownGraceFromEnv();
  const { worker, ssh } = await createOpsWorker(opts);
  const { identity, buildId, taskQueue } = worker.options;
  const grace = gracePeriod(graceS);
  log.info({ identity, buildId, taskQueue, shutdownGraceS: graceS }, 'worker running');
  try {
    const running = worker.run();
    if (await Promise.race([running.then(() => true), grace.over.then(() => false)])) {
      log.info({ identity }, 'worker stopped: every running step finished');
    } else {
      // Whatever the abandoned worker does now is moot: the process is about to exit.
      running.catch(() => undefined);
      log.warn({ identity, shutdownGraceS: graceS }, 'worker stopped with steps still running: another worker retries them once their heartbeats time out');
    }
  } finally {
    grace.dispose();
    await ssh.closeAll();
  }
}
