// The worker alone, for a Temporal server that runs elsewhere (TEMPORAL_ADDRESS, default 127.0.0.1:7233).
import { Command } from 'commander';
import { TASK_QUEUE } from '../common/constants';
import { InventoryError } from '../config/inventory';
import { targetFromEnv } from '../temporal/connection';
import { inventoryFromEnv } from './inventoryFromEnv';
import { connectWorker, DEFAULT_MAX_CACHED_WORKFLOWS, parseCacheSize, runOpsWorker } from './worker';

async function main() {
  const opts = new Command('opsflow-worker')
    .description('run the opsflow worker against an existing Temporal server')
    .option('--inventory <file>', 'inventory YAML (default: $OPSFLOW_INVENTORY or ./inventory.yaml)')
    .option('--task-queue <name>', 'task queue', process.env.OPSFLOW_TASK_QUEUE ?? TASK_QUEUE)
    .option('--max-cached-workflows <n>', `runs kept in memory (default: $OPSFLOW_WORKER_CACHE or ${DEFAULT_MAX_CACHED_WORKFLOWS})`, (v) => parseCacheSize(v, '--max-cached-workflows'))
    .parse()
    .opts<{ inventory?: string; taskQueue: string; maxCachedWorkflows?: number }>();
  const inventory = inventoryFromEnv(opts.inventory);
  const target = targetFromEnv() ?? { address: '127.0.0.1:7233', namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' };
  const connection = await connectWorker(target);
  await runOpsWorker({ connection, namespace: target.namespace, inventory, taskQueue: opts.taskQueue, maxCachedWorkflows: opts.maxCachedWorkflows });
}

main().catch((err) => {
  console.error(err instanceof InventoryError ? err.message : err);
  process.exit(err instanceof InventoryError ? 2 : 1);
});
