// Temporal for the bench: an in-memory dev server per part (so one part's thousands of runs cannot slow the
// next), the opsflow workflow bundle built once per process, and in-process opsflow workers.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { loadInventory } from '../../src/config/inventory';
import type { SshPool } from '../../src/activities/ssh/pool';
import { startDevServer, type DevServerOptions } from '../../src/temporal/devServer';
import { createOpsWorker } from '../../src/workers/worker';

export interface BenchTemporal {
  address: string;
  client: Client;
  native: NativeConnection;
  stop(): Promise<void>;
}

/** Connections to a Temporal server that runs anyway (a cluster); stop() closes them and leaves it running. */
export async function connectTemporal(address: string): Promise<BenchTemporal> {
  const connection = await Connection.connect({ address });
  const native = await NativeConnection.connect({ address });
  return {
    address,
    client: new Client({ connection, namespace: 'default' }),
    native,
    async stop() {
      await native.close();
      await connection.close();
    },
  };
}

export async function startTemporal(opts: DevServerOptions = {}): Promise<BenchTemporal> {
  const server = await startDevServer(opts);
  const t = await connectTemporal(server.address);
  return {
    ...t,
    async stop() {
      await t.stop();
      await server.stop();
    },
  };
}

/** Runs `fn` with a dev server that is stopped afterwards, whatever happens. */
export async function withTemporal<T>(fn: (t: BenchTemporal) => Promise<T>, opts: DevServerOptions = {}): Promise<T> {
  const t = await startTemporal(opts);
  try {
    return await fn(t);
  } finally {
    await t.stop();
  }
}

export const uniqueId = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

const bundles = new Map<string, Promise<{ code: string }>>();

/** Bundling takes seconds on two cores: once per workflows file per process. */
export function workflowBundle(workflowsPath: string): Promise<{ code: string }> {
  let b = bundles.get(workflowsPath);
  if (!b) {
    b = bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
    bundles.set(workflowsPath, b);
  }
  return b;
}

export const OPSFLOW_WORKFLOWS = require.resolve('../../src/workflows');

// The bundler reports its progress at INFO; the bench output is the tables.
const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};

export interface RunningWorker {
  worker: Worker;
  ssh: SshPool;
  taskQueue: string;
  stop(): Promise<void>;
}

/** A worker for the bench's own workflows (bench/workflows.ts), which opsflow's worker does not register. */
export async function startBenchWorker(t: BenchTemporal, workflowsPath: string, activities: WorkerOptions['activities'], taskQueue = uniqueId('bench')): Promise<{ taskQueue: string; stop(): Promise<void> }> {
  const worker = await Worker.create({ connection: t.native, namespace: 'default', taskQueue, workflowBundle: await workflowBundle(workflowsPath), activities });
  const running = worker.run();
  return {
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

/** The opsflow worker exactly as production builds it, in this process, on its own task queue. */
export async function startOpsWorker(t: BenchTemporal, inventoryFile: string, taskQueue = uniqueId('bench')): Promise<RunningWorker> {
  const { worker, ssh } = await createOpsWorker({
    connection: t.native,
    namespace: 'default',
    inventory: loadInventory(inventoryFile),
    taskQueue,
    workflowBundle: await workflowBundle(OPSFLOW_WORKFLOWS),
  });
  const running = worker.run();
  return {
    worker,
    ssh,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await ssh.closeAll();
    },
  };
}
