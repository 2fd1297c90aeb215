// memcachedPool: replacing a server of a memcached pool, the Open Library runbook, with real memcached servers
// (Debian's) and the test application on two client hosts. Each client loads its pool file at start, so only a
// restart makes the new pool live; its check command writes and reads a key through the application.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemcachedPoolInput } from '../src/schemas/memcachedPool';
import type { RunStatus } from '../src/runbook/protocol';
import type { memcachedPool } from '../src/workflows/memcachedPool';
import { APP_CTL, APP_PY, appDirTemplate, startDataApp, type DataApp } from './support/dataapp';
import { fleetHome } from './support/fleet';
import { cancelledRun, failureOf, freePort, portOpen, recordHistory, startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

const CLIENTS = ['h1', 'h2'];
const name = unique('mcpool');
let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
const queue = unique('mcpool');
const servers: ChildProcess[] = [];
let oldServer: string;
let newServer: number;
let apps: DataApp[] = [];
let appPort: number;

async function startMemcached(megabytes: number): Promise<number> {
  const port = await freePort();
  servers.push(spawn('memcached', ['-l', '127.0.0.1', '-p', String(port), '-m', String(megabytes), '-U', '0', '-u', 'nobody'], { stdio: 'ignore' }));
  await waitFor(() => portOpen(port), `memcached on ${port}`);
  return port;
}

/** A key straight from one memcached server, bypassing the application. */
function rawGet(port: number, key: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(`get ${key}\r\n`));
    let reply = '';
    sock.on('data', (d) => {
      reply += d.toString();
      if (reply.endsWith('END\r\n')) {
        sock.end();
        resolve(reply.startsWith('VALUE') ? reply.split('\r\n')[1] : null);
      }
    });
    sock.on('error', reject);
  });
}

beforeAll(async () => {
  env = await testEnv();
  oldServer = `127.0.0.1:${await startMemcached(64)}`;
  newServer = await startMemcached(96);
  appPort = await freePort();
  apps = await Promise.all(CLIENTS.map((node) => startDataApp(node, name, { memcached: [oldServer] }, { port: appPort })));
  worker = await startWorker(env, writeInventory(), queue);
});

afterAll(async () => {
  await worker?.stop();
  for (const app of apps) app.stop();
  for (const s of servers) s.kill();
  await env?.teardown();
});

function start(input: Partial<MemcachedPoolInput> = {}): Promise<WorkflowHandle<typeof memcachedPool>> {
  const dir = appDirTemplate(name);
  return env.client.workflow.start<typeof memcachedPool>('memcachedPool', {
    taskQueue: queue,
    workflowId: unique('mcpool'),
    args: [
      {
        environment: 'test',
        newServers: [{ host: '127.0.0.1', port: newServer, version: { atLeast: '1.6' }, memoryLimitMb: 96 }],
        pool: [`127.0.0.1:${newServer}`],
        clients: CLIENTS,
        config: { path: path.join(dir, 'config.json'), content: '{"memcached": {servers}}\n' },
        restart: ['sh', APP_CTL, dir, '{address}', String(appPort)],
        sudo: false,
        verify: ['python3', APP_PY, 'check', `http://{address}:${appPort}`, 'cache'],
        checksTimeout: '10s',
        rollbackPlan: 'put config.json.opsflow-previous back and restart',
        approval: { approvers: ['alice'] },
        ...input,
      },
    ],
  });
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const openGate = (h: WorkflowHandle) => waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open'), 'an open gate', 60_000);

describe('memcachedPool', () => {
  it('a wrong -m fails the new server check before any client changes', async () => {
    const h = await start({ newServers: [{ host: '127.0.0.1', port: newServer, memoryLimitMb: 128 }], failure: { onFailure: 'fail' } });
    const { message } = await failureOf(h);
    expect(message).toContain(`memcached 127.0.0.1:${newServer}: memory limit 96 MB, want 128 MB (-m)`);
    expect((await status(h)).gates).toEqual([]);
    for (const app of apps) {
      expect(app.config()).toEqual({ memcached: [oldServer] });
      expect(existsSync(path.join(app.dir, 'config.json.opsflow-previous'))).toBe(false);
    }
  });

  it.each(['cancel', 'abort'] as const)('%s mid-way (h1 switched, h2 at a failure gate): h1 gets the previous pool file back and restarts', async (how) => {
    const hold = path.join(appDirTemplate(name), 'hold-verify');
    writeFileSync(hold.replace('{node}', 'h2'), '');
    try {
      // verify fails on a client while its hold file exists: h2 stops the line at its pre-checks.
      const verify = ['sh', '-c', 'if [ -e "$0" ]; then echo "held by the test" >&2; exit 1; fi; exec "$@"', hold, 'python3', APP_PY, 'check', `http://{address}:${appPort}`, 'cache'];
      const h = await start({ verify });
      await openGate(h);
      await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
      await waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open' && g.kind === 'failure'), 'the failure gate of h2', 60_000);
      expect(apps[0].config()).toEqual({ memcached: [`127.0.0.1:${newServer}`] });
      let st: RunStatus;
      if (how === 'cancel') {
        await h.cancel();
        st = await cancelledRun(h);
        expect(st.error).toContain('upgraded: h1; skipped: none; interrupted: h2; untouched: none');
      } else {
        await h.executeUpdate('resolve', { args: [{ action: 'abort', by: 'alice' }] });
        expect((await failureOf(h)).type).toBe('Aborted');
        st = await status(h);
      }
      expect(st.undo?.putBack).toEqual([`put the previous ${path.join(appDirTemplate(name), 'config.json')} back on h1 and restart`]);
      for (const app of apps) {
        expect(app.config()).toEqual({ memcached: [oldServer] });
        // Restarted on the file put back: the running application uses the old pool again.
        expect(JSON.parse((await app.get('/config')).text).memcached).toEqual([oldServer]);
      }
    } finally {
      rmSync(hold.replace('{node}', 'h2'), { force: true });
    }
  });

  it('checks the new server, then rewrites, restarts and verifies each client in order', async () => {
    const h = await start();
    const gate = await openGate(h);
    expect(gate.evidence).toContain(`memcached 127.0.0.1:${newServer}: version 1.6`);
    expect(gate.evidence).toContain('96 MB, set/get ok');
    expect(gate.prompt).toContain(`write the pool 127.0.0.1:${newServer} into`);
    // Nothing changed while the gate waits.
    for (const app of apps) expect(JSON.parse((await app.get('/config')).text).memcached).toEqual([oldServer]);
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    const result = await h.result();
    expect(result).toMatchObject({ ok: true, upgraded: CLIENTS, skipped: [] });
    expect(result.notes.map((n) => n.checks.map((c) => c.ok))).toEqual([
      [true, true],
      [true, true],
    ]);
    for (const app of apps) {
      expect(app.config()).toEqual({ memcached: [`127.0.0.1:${newServer}`] });
      expect(JSON.parse(readFileSync(path.join(app.dir, 'config.json.opsflow-previous'), 'utf8'))).toEqual({ memcached: [oldServer] });
      // The running application loaded the new pool: what it writes lands on the new server.
      expect(JSON.parse((await app.get('/config')).text).memcached).toEqual([`127.0.0.1:${newServer}`]);
      const key = unique('edit');
      expect((await app.post(`/cache/${key}`, `from ${app.node}`)).status).toBe(200);
      expect(await rawGet(newServer, key)).toBe(`from ${app.node}`);
      expect(await rawGet(Number(oldServer.split(':')[1]), key)).toBeNull();
    }
    recordHistory(h, 'memcachedPool-replaced');
  });

  it("a relative config.path is the file from the client's login directory, the SSH user's home", async () => {
    const relative = path.relative(fleetHome(), path.join(appDirTemplate(name), 'config.json'));
    expect(path.isAbsolute(relative)).toBe(false);
    const both = [oldServer, `127.0.0.1:${newServer}`];
    const h = await start({ pool: both, config: { path: relative, content: '{"memcached": {servers}}\n' } });
    await openGate(h);
    await h.executeUpdate('approve', { args: [{ by: 'alice' }] });
    expect(await h.result()).toMatchObject({ ok: true, upgraded: CLIENTS, skipped: [] });
    for (const app of apps) {
      expect(app.config()).toEqual({ memcached: both });
      expect(JSON.parse((await app.get('/config')).text).memcached).toEqual(both);
    }
  });

  it('refuses a new server that is not in the pool and a pool file path starting with ~ or -, and plans without touching anything', async () => {
    const bad = await failureOf(await start({ pool: [oldServer] }));
    expect(bad.type).toBe('InvalidInput');
    expect(bad.message).toContain(`newServers.0: 127.0.0.1:${newServer} is not in the pool`);
    for (const where of ['~/memcache.yml', '-memcache.yml']) {
      const refused = await failureOf(await start({ config: { path: where, content: '{servers}' } }));
      expect(refused.type).toBe('InvalidInput');
      expect(refused.message).toContain("config.path: an absolute path, or one relative to the client's login directory");
    }
    const plan = await (await start({ dryRun: true })).result();
    expect(plan.plan?.map((p) => p.host)).toEqual(CLIENTS);
    expect(plan.plan?.[0].steps[0]).toContain(`check the new server(s) 127.0.0.1:${newServer}`);
  });
});
