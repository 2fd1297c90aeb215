// `npm start`: the embedded Temporal dev server (persisted, with its Web UI) and the worker, in one process.
// With TEMPORAL_ADDRESS set it starts no server and runs the worker against that cluster.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { TASK_QUEUE } from './common/constants';
import { log } from './common/log';
import { InventoryError } from './config/inventory';
import { targetFromEnv, type TemporalTarget } from './temporal/connection';
import { startDevServer, type DevServer } from './temporal/devServer';
import { ensureSearchAttributes } from './temporal/searchAttributes';
import { inventoryFromEnv } from './workers/inventoryFromEnv';
import { connectWorker, runOpsWorker } from './workers/worker';
import { Client, Connection } from '@temporalio/client';
import { startSlackEndpoint } from './slack/serve';

async function main() {
  const inventory = inventoryFromEnv();
  let target = targetFromEnv();
  let server: DevServer | undefined;
  if (target) {
    await ensureSearchAttributes(target);
  } else {
    const dataDir = path.resolve(process.env.OPSFLOW_DATA_DIR ?? 'data');
    mkdirSync(dataDir, { recursive: true });
    server = await startDevServer({
      dbFilename: path.join(dataDir, 'temporal.db'),
      port: Number(process.env.OPSFLOW_TEMPORAL_PORT ?? 7233),
      uiPort: Number(process.env.OPSFLOW_UI_PORT ?? 8233),
      codecEndpoint: process.env.OPSFLOW_CODEC_ENDPOINT,
    });
    target = { address: server.address, namespace: 'default' } satisfies TemporalTarget;
    log.info({ dataDir, address: server.address }, 'Temporal dev server started');
  }
  const taskQueue = process.env.OPSFLOW_TASK_QUEUE ?? TASK_QUEUE;
  const connection = await connectWorker(target);
  const clientConnection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
  const slack = await startSlackEndpoint(new Client({ connection: clientConnection, namespace: target.namespace }), inventory);
  console.log(`\nopsflow is running\n  Temporal:   ${target.address} (namespace ${target.namespace})\n  Web UI:     ${server?.uiUrl ?? '(the cluster\'s own UI)'}\n  task queue: ${taskQueue}\n  Slack:      ${slack ? `interactivity at ${slack.url}` : 'not configured (gates answer from the CLI and the UI)'}\n  try:        npx opsflow --help\n`);
  try {
    await runOpsWorker({ connection, namespace: target.namespace, inventory, taskQueue });
  } finally {
    await slack?.close();
    await clientConnection.close();
    await connection.close();
    await server?.stop();
  }
}

main().catch((err) => {
  console.error(err instanceof InventoryError ? err.message : err);
  process.exit(err instanceof InventoryError ? 2 : 1);
});
