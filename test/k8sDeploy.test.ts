// k8sDeploy against a real Kubernetes API server: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// on loopback, with KWOK nodes whose stages make a chosen image never ready or crash-loop (test/support/k8s.ts).
// Each test has its own service and namespace, so the deployments' revisions are the test's own.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { K8sDeployInput } from '../src/schemas/k8sDeploy';
import type { RunStatus } from '../src/runbook/protocol';
import type { k8sDeploy } from '../src/workflows/k8sDeploy';
import { MIGRATION_WARNING } from '../src/workflows/k8sDeploy';
import { startControlPlane, CRASHLOOP, NEVER_READY, type ControlPlane } from './support/k8s';
import { cancelledRun, failureOf, freePort, recordHistory, spawnWorker, startWorker, testEnv, unique, waitFor } from './support/harness';

const OLD = 'registry.example.com/shop/web:1.0';
const NEW = 'registry.example.com/shop/web:2.0';
const SIDECAR = 'registry.example.com/proxy:3.1';
const WORKER_OLD = 'registry.example.com/shop/worker:1.0';

let cp: ControlPlane;
let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
let inventory: string;
let health: http.Server;
const queue = unique('k8s');
const spawned: ChildProcess[] = [];

/** One service per test: its own namespace, a web deployment (app + sidecar), and a worker deployment for some. */
const SERVICES = ['good', 'never', 'crash', 'reject', 'cancel', 'midway', 'pair', 'killed', 'input', 'shop-hk', 'shop-eu'];
const namespace = (service: string) => `t-${service}`;

beforeAll(async () => {
  cp = await startControlPlane();
  const port = await freePort();
  health = http.createServer((_req, res) => res.end('ok')).listen(port, '127.0.0.1');
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-k8s-inv-'));
  const service = (name: string) => ({
    namespace: namespace(name),
    deployments: [{ name: 'web', containers: ['app'] }, ...(name === 'pair' ? [{ name: 'worker', containers: ['worker'] }] : [])],
    rolloutTimeout: '2m',
    watch: { period: '3s', interval: '1s', notReadyGrace: '3s' },
    checks: name === 'good' ? [{ url: `http://127.0.0.1:${port}/health`, body: 'ok' }] : [],
    migration: name === 'pair',
  });
  inventory = path.join(dir, 'inventory.yaml');
  writeFileSync(
    inventory,
    stringify({
      environments: {
        test: { kubernetes: { kubeconfig: cp.kubeconfig, context: cp.context, services: Object.fromEntries(SERVICES.map((s) => [s, service(s)])) } },
        elsewhere: { kubernetes: { kubeconfig: cp.kubeconfig, context: 'no-such-context', services: { good: service('good') } } },
      },
      // A hot-standby system whose two infrastructures deploy through k8sDeploy (the AWS accounts only give regions).
      aws: { hk: { region: 'ap-east-1' }, eu: { region: 'eu-west-3' } },
      systems: {
        shop: {
          roles: { production: 'hk', standby: 'eu' },
          infrastructures: Object.fromEntries(['hk', 'eu'].map((i) => [i, { aws: i, environment: 'test', deploy: { k8sDeploy: { service: `shop-${i}`, image: 'registry.example.com/shop/web:{release}' } } }])),
        },
      },
    }),
  );
  for (const s of SERVICES) {
    await cp.api('POST', '/api/v1/namespaces', { metadata: { name: namespace(s) } });
    await createDeployment(namespace(s), 'web', { app: OLD, sidecar: SIDECAR });
    if (s === 'pair') await createDeployment(namespace(s), 'worker', { worker: WORKER_OLD });
  }
  env = await testEnv();
  worker = await startWorker(env, inventory, queue);
}, 240_000);

afterEach(() => {
  for (const w of spawned.splice(0)) if (w.exitCode === null) w.kill('SIGKILL');
});

afterAll(async () => {
  await worker?.stop();
  health?.close();
  await cp?.stop();
  await env?.teardown();
});

interface Deployment {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: { template: { spec: { containers: { name: string; image: string }[] } } };
  status?: { observedGeneration?: number; updatedReplicas?: number; availableReplicas?: number; replicas?: number };
}

async function createDeployment(ns: string, name: string, images: Record<string, string>): Promise<void> {
  await cp.api('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
    metadata: { name },
    spec: {
      replicas: 2,
      // Short, so that a rollout that cannot progress fails within seconds.
      progressDeadlineSeconds: 6,
      selector: { matchLabels: { app: name } },
      strategy: { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: { metadata: { labels: { app: name } }, spec: { containers: Object.entries(images).map(([c, image]) => ({ name: c, image })) } },
    },
  });
  await waitFor(async () => {
    const d = await deployment(ns, name);
    return d.status?.observedGeneration === d.metadata.generation && d.status?.availableReplicas === 2 && d.status?.updatedReplicas === 2;
  }, `${ns}/${name} to roll out`, 60_000, 250);
}

const deployment = (ns: string, name: string) => cp.api<Deployment>('GET', `/apis/apps/v1/namespaces/${ns}/deployments/${name}`);
const images = async (ns: string, name: string) => Object.fromEntries((await deployment(ns, name)).spec.template.spec.containers.map((c) => [c.name, c.image]));

/** The ReplicaSet of the deployment's current revision: what `kubectl rollout undo` returns to. */
async function currentReplicaSet(ns: string, name: string): Promise<string> {
  const d = await deployment(ns, name);
  const rev = d.metadata.annotations?.['deployment.kubernetes.io/revision'];
  const list = await cp.api<{ items: { metadata: { name: string; annotations?: Record<string, string> } }[] }>('GET', `/apis/apps/v1/namespaces/${ns}/replicasets?labelSelector=app%3D${name}`);
  return list.items.find((rs) => rs.metadata.annotations?.['deployment.kubernetes.io/revision'] === rev)?.metadata.name as string;
}

async function replicaSetCount(ns: string, name: string): Promise<number> {
  return (await cp.api<{ items: unknown[] }>('GET', `/apis/apps/v1/namespaces/${ns}/replicasets?labelSelector=app%3D${name}`)).items.length;
}

/** Stable again: the rollback's rollout finished. */
async function settled(ns: string, name: string): Promise<void> {
  await waitFor(async () => {
    const d = await deployment(ns, name);
    return d.status?.observedGeneration === d.metadata.generation && d.status?.updatedReplicas === 2 && d.status?.availableReplicas === 2 && d.status?.replicas === 2;
  }, `${ns}/${name} to settle`, 60_000, 250);
}

function start(input: Partial<K8sDeployInput> & { service: string }, taskQueue = queue): Promise<WorkflowHandle<typeof k8sDeploy>> {
  return env.client.workflow.start<typeof k8sDeploy>('k8sDeploy', {
    taskQueue,
    workflowId: unique(`k8s-${input.service}`),
    args: [{ environment: 'test', image: NEW, failure: { onFailure: 'fail' }, ...input } as K8sDeployInput],
  });
}

/** The web deployment back on the old image, on the very ReplicaSet it ran before, and settled there. */
async function expectRolledBack(ns: string, before: string): Promise<void> {
  await settled(ns, 'web');
  expect(await images(ns, 'web')).toEqual({ app: OLD, sidecar: SIDECAR });
  expect(await currentReplicaSet(ns, 'web')).toBe(before);
}

const status = (h: WorkflowHandle) => h.query<RunStatus>('status');
const openGate = (h: WorkflowHandle, id: string) => waitFor(async () => (await status(h)).gates.find((g) => g.state === 'open' && g.id === id), `gate ${id}`, 60_000);

describe('k8sDeploy', () => {
  it('rolls a good image out, reporting progress, and ends on the new image with a change-cause naming the run', async () => {
    const ns = namespace('good');
    const before = await currentReplicaSet(ns, 'web');
    const h = await start({ service: 'good' });
    const result = await h.result();
    expect(result).toMatchObject({ ok: true, context: cp.context, namespace: ns, release: '2.0', warnings: [] });
    expect(result.deployments).toEqual([
      expect.objectContaining({ name: 'web', outcome: 'updated', before: { revision: '1', images: { app: OLD, sidecar: SIDECAR } }, images: { app: NEW }, after: { revision: '2', images: { app: NEW, sidecar: SIDECAR } } }),
    ]);
    expect(result.watch).toMatchObject({ ok: true, restarts: 0, pods: 2, checks: [{ ok: true }] });
    expect(await images(ns, 'web')).toEqual({ app: NEW, sidecar: SIDECAR });
    expect((await deployment(ns, 'web')).metadata.annotations?.['kubernetes.io/change-cause']).toContain(h.workflowId);
    expect(await currentReplicaSet(ns, 'web')).not.toBe(before);
    const steps = (await status(h)).steps.map((s) => s.name);
    expect(steps.filter((s) => /^rollout web: \d\/2 pods updated/.test(s)).length).toBeGreaterThan(0);
    expect(steps).toContain('rollout web: 2/2 pods updated, 2 of 2 available');
    recordHistory(h, 'k8sDeploy-success');
  });

  it('an image that never becomes ready: progress deadline, then undo to the recorded revision', async () => {
    const ns = namespace('never');
    const before = await currentReplicaSet(ns, 'web');
    const h = await start({ service: 'never', image: `${NEW}${NEVER_READY}` });
    const { type, message } = await failureOf(h);
    expect(type).toBe('RolloutFailed');
    expect(message).toContain('web did not roll out: progress deadline exceeded');
    expect(message).toContain('rolled back web to revision 1');
    await expectRolledBack(ns, before);
    expect((await status(h)).steps.find((s) => s.name === 'undo: roll web back to revision 1')?.state).toBe('compensated');
    recordHistory(h, 'k8sDeploy-rolled-back');
  });

  it('an image that crash-loops after becoming ready: caught by the watch, then undone', async () => {
    const ns = namespace('crash');
    const before = await currentReplicaSet(ns, 'web');
    const h = await start({ service: 'crash', image: `${NEW}${CRASHLOOP}`, watch: '60s' });
    const { type, message } = await failureOf(h);
    expect(type).toBe('WatchFailed');
    expect(message).toMatch(/CrashLoopBackOff|restart/);
    expect(message).toContain('rolled back web to revision 1');
    // The rollout itself succeeded: the trouble came after.
    expect((await status(h)).steps.find((s) => s.name === 'rollout web')?.state).toBe('succeeded');
    await expectRolledBack(ns, before);
  });

  it('a rejection at the promotion gate rolls the release back', async () => {
    const ns = namespace('reject');
    const before = await currentReplicaSet(ns, 'web');
    const h = await start({ service: 'reject', promote: { approvers: ['alice'] } });
    const gate = await openGate(h, 'promote');
    expect(gate.evidence).toContain(`web (revision 1): app ${OLD} → ${NEW}`);
    expect(await images(ns, 'web')).toEqual({ app: NEW, sidecar: SIDECAR });
    await h.executeUpdate('reject', { args: [{ by: 'alice', reason: 'checkout looks wrong' }] });
    const { type, message } = await failureOf(h);
    expect(type).toBe('Rejected');
    expect(message).toContain('rejected by alice: checkout looks wrong; rolled back web to revision 1');
    await expectRolledBack(ns, before);
  });

  it('cancelling the run at the promotion gate rolls the release back too', async () => {
    const ns = namespace('cancel');
    const before = await currentReplicaSet(ns, 'web');
    const h = await start({ service: 'cancel', promote: { approvers: ['alice'] } });
    await openGate(h, 'promote');
    await h.cancel();
    const s = await cancelledRun(h);
    expect(s.undo?.putBack).toEqual(['roll web back to revision 1']);
    expect(s.gates.find((g) => g.id === 'promote')?.state).toBe('cancelled');
    await expectRolledBack(ns, before);
  });

  it('cancelled mid-rollout: back on the old image; a second cancel during the rollback does not stop it', async () => {
    const ns = namespace('midway');
    const before = await currentReplicaSet(ns, 'web');
    // Never ready: the rollout stays in progress until its deadline, and the run is cancelled before that.
    const h = await start({ service: 'midway', image: `${NEW}${NEVER_READY}` });
    await waitFor(async () => (await status(h)).steps.some((s) => s.name.startsWith('rollout web: ')), 'the rollout to be followed', 60_000, 50);
    expect((await images(ns, 'web')).app).toBe(`${NEW}${NEVER_READY}`);
    await h.cancel();
    await waitFor(async () => (await status(h)).steps.some((s) => s.name === 'undo: roll web back to revision 1' && s.state === 'running'), 'the rollback to start', 60_000, 20);
    await h.cancel();
    const s = await cancelledRun(h);
    expect(s.undo?.putBack).toEqual(['roll web back to revision 1']);
    await expectRolledBack(ns, before);
  });

  it('two deployments in order, the second failing: both go back, and the migration is said not to be undone', async () => {
    const ns = namespace('pair');
    const before = { web: await currentReplicaSet(ns, 'web'), worker: await currentReplicaSet(ns, 'worker') };
    const h = await start({ service: 'pair', image: undefined, images: { app: NEW, worker: `registry.example.com/shop/worker:2.0${NEVER_READY}` } });
    const { type, message } = await failureOf(h);
    expect(type).toBe('RolloutFailed');
    expect(message).toContain('worker did not roll out');
    expect(message).toContain('rolled back worker to revision 1, web to revision 1');
    expect(message).toContain(MIGRATION_WARNING);
    const steps = (await status(h)).steps;
    // web was rolled out (and verified) before worker was touched, and undone after it.
    const order = ['rollout web', 'set image worker', 'undo: roll worker back to revision 1', 'undo: roll web back to revision 1'].map((n) => steps.findIndex((s) => s.name === n));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    await settled(ns, 'web');
    await settled(ns, 'worker');
    expect(await images(ns, 'web')).toEqual({ app: OLD, sidecar: SIDECAR });
    expect(await images(ns, 'worker')).toEqual({ worker: WORKER_OLD });
    expect({ web: await currentReplicaSet(ns, 'web'), worker: await currentReplicaSet(ns, 'worker') }).toEqual(before);
  });

  it('a worker killed mid-rollout: the next one carries on from the recorded revision', async () => {
    const ns = namespace('killed');
    const before = await currentReplicaSet(ns, 'web');
    const killQueue = unique('k8s-kill');
    const first = spawnWorker(inventory, killQueue);
    spawned.push(first);
    const h = await start({ service: 'killed', image: `${NEW}${NEVER_READY}` }, killQueue);
    await waitFor(async () => (await status(h)).steps.some((s) => s.name.startsWith('rollout web: ')), 'the rollout to be followed', 120_000, 200);
    first.kill('SIGKILL');
    if (first.exitCode === null && first.signalCode === null) await new Promise((r) => first.once('exit', r));
    spawned.push(spawnWorker(inventory, killQueue));
    const { type, message } = await failureOf(h);
    expect(type).toBe('RolloutFailed');
    expect(message).toContain('rolled back web to revision 1');
    await expectRolledBack(ns, before);
    // One template change, not two: the retried steps found their work done.
    expect(await replicaSetCount(ns, 'web')).toBe(2);
  }, 240_000);

  it('refuses bad input up front and changes nothing', async () => {
    const ns = namespace('input');
    const generation = (await deployment(ns, 'web')).metadata.generation;
    const cases: [Partial<K8sDeployInput> & { service: string }, string, string][] = [
      [{ service: 'input', image: 'registry.example.com/shop/web:2.0 --privileged' }, 'InvalidInput', 'image: "registry.example.com/shop/web:2.0 --privileged" is not an image reference'],
      [{ service: 'input', image: 'registry.example.com/shop/web' }, 'InvalidInput', 'names no tag or digest'],
      [{ service: 'input', image: NEW, images: { app: NEW } }, 'InvalidInput', 'image: give exactly one of image or images'],
      [{ service: 'input', image: undefined, images: { web: NEW } }, 'InvalidInput', 'images.web: no deployment of input declares this container (containers: app)'],
      [{ service: 'nope' }, 'UnknownTarget', 'unknown Kubernetes service "nope" in test'],
      [{ service: 'good', environment: 'elsewhere' }, 'UnknownTarget', 'unknown context "no-such-context"'],
      [{ service: 'good', environment: 'nowhere' }, 'UnknownTarget', 'unknown environment "nowhere"'],
    ];
    for (const [input, wantType, wantMessage] of cases) {
      const { type, message } = await failureOf(await start(input));
      expect(type).toBe(wantType);
      expect(message).toContain(wantMessage);
    }
    expect((await deployment(ns, 'web')).metadata.generation).toBe(generation);
  });

  it('a dry run records and plans, and changes nothing', async () => {
    const ns = namespace('input');
    const generation = (await deployment(ns, 'web')).metadata.generation;
    const result = await (await start({ service: 'input', dryRun: true, promote: { approvers: ['alice'] } })).result();
    expect(result.ok).toBe(true);
    expect(result.plan?.join('\n')).toContain(`deployment web (revision 1): set image app=${NEW} (now app=${OLD} sidecar=${SIDECAR})`);
    expect(result.plan).toContain('gate promote: approval to keep the release; a rejection rolls back');
    expect((await deployment(ns, 'web')).metadata.generation).toBe(generation);
  });
});

describe('hotStandbyRelease through k8sDeploy', () => {
  it('deploys the release as child k8sDeploy runs when the inventory says so: standby first, then production', async () => {
    const h = await env.client.workflow.start('hotStandbyRelease', { taskQueue: queue, workflowId: unique('hsr-k8s'), args: [{ system: 'shop', release: '2.0', kind: 'simple', failure: { onFailure: 'fail' } }] });
    expect(await h.result()).toMatchObject({ kind: 'simple', production: 'hk', standby: 'eu' });
    for (const s of ['shop-hk', 'shop-eu']) expect(await images(namespace(s), 'web')).toEqual({ app: NEW, sidecar: SIDECAR });
    for (const i of ['eu', 'hk']) {
      const child = await env.client.workflow.getHandle(`${h.workflowId}/deploy-${i}`).describe();
      expect([child.type, child.status.name]).toEqual(['k8sDeploy', 'COMPLETED']);
    }
    const steps = (await h.query<RunStatus>('status')).steps.map((x) => x.name).filter((n) => n.startsWith('deploy'));
    expect(steps).toEqual(['deploy 2.0 to eu', 'deploy 2.0 to hk']);
  });

  it('cancelled while its child k8sDeploy rolls out: the child is cancelled and rolls back before the release ends', async () => {
    const ns = namespace('shop-eu');
    const before = { replicaSet: await currentReplicaSet(ns, 'web'), images: await images(ns, 'web'), production: await images(namespace('shop-hk'), 'web') };
    const h = await env.client.workflow.start('hotStandbyRelease', { taskQueue: queue, workflowId: unique('hsr-k8s-cancel'), args: [{ system: 'shop', release: `3.0${NEVER_READY}`, kind: 'simple', failure: { onFailure: 'fail' } }] });
    const child = env.client.workflow.getHandle(`${h.workflowId}/deploy-eu`);
    await waitFor(async () => (await child.query<RunStatus>('status').catch(() => undefined))?.steps.some((s) => s.name.startsWith('rollout web: ')), 'the child to be rolling out', 60_000, 50);
    await h.cancel();
    await cancelledRun(h);
    expect(await cancelledRun(child)).toMatchObject({ undo: { putBack: [expect.stringMatching(/^roll web back to revision \d+$/)] } });
    await settled(ns, 'web');
    expect(await images(ns, 'web')).toEqual(before.images);
    expect(await currentReplicaSet(ns, 'web')).toBe(before.replicaSet);
    expect(await images(namespace('shop-hk'), 'web')).toEqual(before.production);
  });
});
