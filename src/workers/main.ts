// The worker alone, for a Temporal server that runs elsewhere (TEMPORAL_ADDRESS, default 127.0.0.1:7233).
import { Command } from 'commander';
import { TASK_QUEUE } from '../common/constants';
import { InvalidInventory } from '../common/errors';
import { targetFromEnv } from '../temporal/connection';
import { watchedInventory } from './inventoryFromEnv';
import { DEFAULT_SHUTDOWN_GRACE_S, parseShutdownGrace } from './shutdown';
import { connectWorker, DEFAULT_MAX_CACHED_WORKFLOWS, parseCacheSize, runOpsWorker } from './worker';

async function main() {
  const opts = new Command('opsflow-worker')
    .description('run the opsflow worker against an existing Temporal server')
    .option('--inventory <file>', 'inventory YAML (default: $OPSFLOW_INVENTORY, ./inventory.yaml, sandbox/inventory.yaml, else the built-in one)')
    .option('--task-queue <name>', 'task queue', process.env.OPSFLOW_TASK_QUEUE ?? TASK_QUEUE)
    .option('--max-cached-workflows <n>', `runs kept in memory (default: $OPSFLOW_WORKER_CACHE or ${DEFAULT_MAX_CACHED_WORKFLOWS})`, (v) => parseCacheSize(v, '--max-cached-workflows'))
    .option('--shutdown-grace <seconds>', `on SIGTERM, how long running steps may finish before they are left to another worker (default: $OPSFLOW_WORKER_SHUTDOWN_GRACE or ${DEFAULT_SHUTDOWN_GRACE_S})`, (v) => parseShutdownGrace(v, '--shutdown-grace'))
    .parse()
    .opts<{ inventory?: string; taskQueue: string; maxCachedWorkflows?: number; shutdownGrace?: number }>();
  const inventory = watchedInventory(opts.inventory);
  const target = targetFromEnv() ?? { address: '127.0.0.1:7233', namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' };
  const connection = await connectWorker(target);
  await runOpsWorker({ connection, namespace: target.namespace, inventory, taskQueue: opts.taskQueue, maxCachedWorkflows: opts.maxCachedWorkflows, shutdownGraceS: opts.shutdownGrace });
}

// Exits 0 when stopped, drained or not: a step left running (its grace ran out) still holds timers and sockets.
main().then(() => process.exit(0), (err) => {
  console.error(err instanceof InvalidInventory ? err.message : err);
  process.exit(err instanceof InvalidInventory ? 2 : 1);
});
