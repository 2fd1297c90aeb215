// A worker SIGKILLed while an activity waits on a slow cloud call (an S3 listing held in a proxy in front of
// moto_server) is noticed by its missed heartbeats: the next attempt starts on a new worker within seconds, not
// at the end of the activity's start-to-close allowance.
import http from 'node:http';
import type { Socket } from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PruneBackupsResult } from '../src/workflows/pruneBackups';
import { writeDataInventory } from './support/data';
import { activityRuns } from './support/history';
import { freePort, spawnWorker, testEnv, unique, waitFor } from './support/harness';
import { startMoto, type TestMoto } from './support/moto';

let env: TestWorkflowEnvironment;
let moto: TestMoto;
let proxy: http.Server;
let proxyUrl: string;
const sockets = new Set<Socket>();
/** Set while the proxy should hold the next S3 listing; cleared once one is held. */
let holdNext = true;
let held = false;

beforeAll(async () => {
  env = await testEnv();
  moto = await startMoto();
  await new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: moto.credentials }).send(new CreateBucketCommand({ Bucket: 'slow-backups' }));
  // Forwards every request to moto, except the first listing, which it never answers.
  proxy = http.createServer((req, res) => {
    if (holdNext && req.url?.includes('list-type=2')) {
      holdNext = false;
      held = true;
      return;
    }
    const upstream = http.request(`${moto.endpoint}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    req.pipe(upstream);
  });
  proxy.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  proxy?.close();
  moto?.stop();
  await env?.teardown();
});

it('retries an activity whose worker was SIGKILLed mid-call after its heartbeat timeout, not its start-to-close', async () => {
  const queue = unique('dead-worker');
  const inventory = writeDataInventory({
    aws: { slow: { region: 'us-east-1', endpoint: proxyUrl, accessKeyIdEnv: 'SLOW_KEY', secretAccessKeyEnv: 'SLOW_SECRET' } },
    systems: { slow: { infrastructures: { a: { aws: 'slow' }, b: { aws: 'slow' } }, roles: { production: 'a', standby: 'b' }, backups: { account: 'slow', bucket: 'slow-backups' } } },
  });
  const creds = { SLOW_KEY: moto.credentials.accessKeyId, SLOW_SECRET: moto.credentials.secretAccessKey };
  const first = spawnWorker(inventory, queue, creds);
  let second: ReturnType<typeof spawnWorker> | undefined;
  try {
    const h = await env.client.workflow.start('pruneBackups', { taskQueue: queue, workflowId: unique('prune'), args: [{ system: 'slow', dryRun: true, failure: { onFailure: 'fail' } }] });
    await waitFor(() => held, 'the S3 listing to reach the proxy', 120_000);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    second = spawnWorker(inventory, queue, creds);
    const result = (await h.result()) as PruneBackupsResult;
    expect(result).toMatchObject({ dryRun: true, location: 's3://slow-backups/slow/', expired: [] });
    const [listing] = (await activityRuns(h)).filter((a) => a.type === 'listBackups');
    // The second attempt began because the first stopped heartbeating, well inside its start-to-close.
    expect(listing).toMatchObject({ attempts: 2, outcome: 'completed', previous: { timeout: 'HEARTBEAT' } });
    expect(listing.heartbeatMs).toBeLessThanOrEqual(20_000);
    expect(listing.startToCloseMs).toBeGreaterThanOrEqual(10 * listing.heartbeatMs);
  } finally {
    first.kill('SIGKILL');
    second?.kill('SIGTERM');
  }
}, 240_000);
