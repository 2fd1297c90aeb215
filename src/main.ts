// `npm start`: the embedded Temporal dev server (persisted, with its Web UI) and the worker, in one process.
// With TEMPORAL_ADDRESS set it starts no server and runs the worker against that cluster.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { TASK_QUEUE } from './common/constants';
import { log } from './common/log';
import { InvalidInventory, ToolMissing } from './common/errors';
import { AesGcmCodec } from './codec/aesGcm';
import { KeyError, keyringFromEnv } from './codec/keys';
import { startCodecServer, type CodecServer } from './codec/server';
import { dataConverterFromEnv, targetFromEnv, type TemporalTarget } from './temporal/connection';
import { startDevServer, type DevServer } from './temporal/devServer';
import { ensureSearchAttributes } from './temporal/searchAttributes';
import { describeInventory, watchedInventory } from './workers/inventoryFromEnv';
import { connectWorker, runOpsWorker } from './workers/worker';
import { Client, Connection } from '@temporalio/client';
import { startSlackEndpoint } from './slack/serve';

async function main() {
  const inventory = watchedInventory();
  let target = targetFromEnv();
  let server: DevServer | undefined;
  let codecServer: CodecServer | undefined;
  const keys = keyringFromEnv();
  if (target) {
    await ensureSearchAttributes(target);
  } else {
    const dataDir = path.resolve(process.env.OPSFLOW_DATA_DIR ?? 'data');
    mkdirSync(dataDir, { recursive: true });
    const uiPort = Number(process.env.OPSFLOW_UI_PORT ?? 8233);
    // With encryption on, the UI decodes through our own codec server, which its pages call from the browser.
    if (keys && !process.env.OPSFLOW_CODEC_ENDPOINT) {
      codecServer = await startCodecServer({
        codec: new AesGcmCodec(keys),
        port: Number(process.env.OPSFLOW_CODEC_PORT ?? 8234),
        origins: [`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`],
      });
    }
    server = await startDevServer({
      dbFilename: path.join(dataDir, 'temporal.db'),
      port: Number(process.env.OPSFLOW_TEMPORAL_PORT ?? 7233),
      uiPort,
      codecEndpoint: process.env.OPSFLOW_CODEC_ENDPOINT ?? codecServer?.url,
    });
    target = { address: server.address, namespace: 'default' } satisfies TemporalTarget;
    log.info({ dataDir, address: server.address }, 'Temporal dev server started');
  }
  const taskQueue = process.env.OPSFLOW_TASK_QUEUE ?? TASK_QUEUE;
  const connection = await connectWorker(target);
  const clientConnection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
  const slack = await startSlackEndpoint(new Client({ connection: clientConnection, namespace: target.namespace, dataConverter: dataConverterFromEnv() }), inventory);
  console.log(`\nopsflow is running\n  Temporal:   ${target.address} (namespace ${target.namespace})\n  Web UI:     ${server?.uiUrl ?? '(the cluster\'s own UI)'}\n  task queue: ${taskQueue}\n  inventory:  ${describeInventory(inventory)}\n  payloads:   ${keys ? `encrypted (key ${keys.current.id})${codecServer ? `, codec server ${codecServer.url}` : ''}` : 'plain JSON (set OPSFLOW_CODEC_KEYS to encrypt)'}\n  Slack:      ${slack ? `interactivity at ${slack.url}` : 'not configured (gates answer from the CLI and the UI)'}\n  try:        ${inventory.file ? 'npx opsflow --help' : `npx opsflow start fleetRun --set environment=local --set target.group=all --set 'command=["uname","-a"]'`}\n`);
  try {
    await runOpsWorker({ connection, namespace: target.namespace, inventory, taskQueue });
  } finally {
    await slack?.close();
    await clientConnection.close();
    await connection.close();
    await server?.stop();
    await codecServer?.close();
  }
}

// Exits 0 when stopped, drained or not: a step left running (its grace ran out) still holds timers and sockets.
main().then(() => process.exit(0), (err) => {
  const config = err instanceof InvalidInventory || err instanceof KeyError || err instanceof ToolMissing;
  console.error(config ? err.message : err);
  process.exit(config ? 2 : 1);
});
