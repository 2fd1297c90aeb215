// The opsflow worker alone in its own process, so its resident memory is measured without the bench's.
// argv: TEMPORAL_ADDRESS INVENTORY TASK_QUEUE BUNDLE_FILE [MAX_CACHED_WORKFLOWS]. Answers {type: 'memory'} over IPC.
process.env.OPSFLOW_LOG_LEVEL ??= 'warn';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { loadInventory } from '../../src/config/inventory';
import { createOpsWorker } from '../../src/workers/worker';

export interface MemoryReport {
  type: 'memory';
  rssMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
}

async function main() {
  const [address, inventory, taskQueue, bundle, cache] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address });
  const { worker, ssh } = await createOpsWorker({ connection, namespace: 'default', inventory: loadInventory(inventory), taskQueue, workflowBundle: { codePath: bundle }, maxCachedWorkflows: cache ? Number(cache) : undefined });
  process.on('message', (m: { type?: string }) => {
    if (m?.type !== 'memory') return;
    const mem = process.memoryUsage();
    const MiB = 2 ** 20;
    const report: MemoryReport = { type: 'memory', rssMiB: mem.rss / MiB, heapUsedMiB: mem.heapUsed / MiB, externalMiB: mem.external / MiB, arrayBuffersMiB: mem.arrayBuffers / MiB };
    process.send?.(report);
  });
  // The parent going away must not leave a worker polling behind.
  process.on('disconnect', () => worker.shutdown());
  const running = worker.run();
  process.send?.({ type: 'ready', maxCachedWorkflows: worker.options.maxCachedWorkflows });
  await running;
  await ssh.closeAll();
  await connection.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
