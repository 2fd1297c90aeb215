// Activities for Kubernetes deployments, with @kubernetes/client-node and the inventory's kubeconfig context:
// record a deployment's revision, set its images, follow its rollout the way `kubectl rollout status` does,
// watch its pods afterwards, and roll it back the way `kubectl rollout undo` does. Each is check-then-act or
// read-only, so a retry after a crash does nothing twice.
import { existsSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import type { AppsV1Api, CoreV1Api, V1Deployment, V1LabelSelector, V1Pod, V1ReplicaSet } from '@kubernetes/client-node';
import { UnknownTargetError, type Inventory } from '../config/inventory';
import type { K8sServiceConfig } from '../config/kubernetes';
import { runCheck, type CheckResult } from './checks';
import { Conflict, DeploymentPaused, DeploymentReplaced, KubernetesClientUnavailable, KubernetesRefused, NoRevision, NotObserved, RevisionGone, UnknownTarget } from '../common/errors';

export interface K8sRef {
  environment: string;
  service: string;
}

export interface K8sPlan {
  context: string;
  /** The API server's URL, for the record. */
  server?: string;
  namespace: string;
  deployments: { name: string; containers: string[] }[];
  rolloutTimeoutMs: number;
  watch: { periodMs: number; intervalMs: number; notReadyGraceMs: number; maxRestarts: number };
  checks: K8sServiceConfig['checks'];
  migration: boolean;
}

/** What a deployment ran before the release: enough to put it back, and to say what it was. */
export interface DeploymentRecord {
  name: string;
  uid: string;
  revision: string;
  /** The ReplicaSet holding that revision's pod template: its name stays when a rollback renumbers it. */
  replicaSet: string;
  /** Image per container, every container of the pod template. */
  images: Record<string, string>;
  changeCause?: string;
}

export interface RolloutProgress {
  done: boolean;
  /** The rollout failed: the progress deadline passed. */
  failed?: string;
  /** "2/3 pods updated, 2 of 4 available, 2 old pending termination" */
  message: string;
  revision?: string;
  desired: number;
  updated: number;
  ready: number;
  available: number;
}

export interface WatchResult {
  ok: boolean;
  problem?: string;
  looks: number;
  pods: number;
  restarts: number;
  checks: CheckResult[];
}

interface WatchProgress {
  elapsedMs: number;
  looks: number;
  /** Restart count per pod when the watch first saw it. */
  baseline: Record<string, number>;
}

const REVISION = 'deployment.kubernetes.io/revision';
const CHANGE_CAUSE = 'kubernetes.io/change-cause';
const HASH_LABEL = 'pod-template-hash';
/** Annotations `kubectl rollout undo` keeps from the deployment instead of taking them from the ReplicaSet. */
const UNDO_KEEPS = new Set(['kubectl.kubernetes.io/last-applied-configuration', REVISION, 'deployment.kubernetes.io/revision-history', 'deployment.kubernetes.io/desired-replicas', 'deployment.kubernetes.io/max-replicas', 'deprecated.deployment.rollback.to']);
/** Container states that mean the release is broken, not slow. */
const BAD_WAITING = new Set(['CrashLoopBackOff', 'ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

const ms = (d: string) => msToNumber(d as Duration);

type ClientModule = typeof import('@kubernetes/client-node');
let clientModule: Promise<ClientModule> | undefined;

/**
 * The client is an ES module, loaded on first use rather than when the worker starts: a worker that never
 * deploys to Kubernetes does not pay for it, and a client that cannot load fails only these activities.
 */
function kubernetesClient(): Promise<ClientModule> {
  clientModule ??= import('@kubernetes/client-node').catch((err: Error) => {
    clientModule = undefined;
    throw new KubernetesClientUnavailable(`@kubernetes/client-node does not load in this worker (Node ${process.versions.node}): ${err.message}`);
  });
  return clientModule;
}

/** An API error as the operator reads it: status code and the API server's own message. */
function apiError(err: unknown, what: string): Error {
  const e = err as { code?: unknown; body?: unknown; message?: string };
  if (typeof e?.code !== 'number') return err instanceof Error ? err : new Error(String(err));
  let detail = '';
  try {
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    detail = (body as { message?: string })?.message ?? '';
  } catch {
    detail = String(e.body ?? '').slice(0, 300);
  }
  const message = `${what}: HTTP ${e.code}${detail ? ` ${detail}` : ''}`;
  // Not found, forbidden, invalid: asking again will not change the answer (the operator's retry can).
  if ([400, 401, 403, 404, 422].includes(e.code)) return e.code === 404 ? new UnknownTarget(message) : new KubernetesRefused(message);
  return new Error(message);
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw apiError(err, what);
  }
}

/** `kubectl`'s label selector syntax, from a deployment's selector. */
function selectorString(sel: V1LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

/** The rollout's state as `kubectl rollout status` judges it. */
export function rolloutStatus(d: V1Deployment): RolloutProgress {
  const st = d.status ?? {};
  const desired = d.spec?.replicas ?? 1;
  const counts = { desired, updated: st.updatedReplicas ?? 0, ready: st.readyReplicas ?? 0, available: st.availableReplicas ?? 0, revision: d.metadata?.annotations?.[REVISION] };
  const old = (st.replicas ?? 0) - counts.updated;
  const message = `${counts.updated}/${desired} pods updated, ${counts.available} of ${st.replicas ?? 0} available${old > 0 ? `, ${old} old pending termination` : ''}`;
  if ((d.metadata?.generation ?? 0) > (st.observedGeneration ?? 0)) return { ...counts, done: false, message: 'waiting for the deployment controller to see the new spec' };
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return { ...counts, done: false, message, failed: `progress deadline exceeded (${d.spec?.progressDeadlineSeconds ?? 600}s) with ${message}: ${progressing.message ?? ''}`.trim() };
  }
  return { ...counts, done: counts.updated >= desired && old <= 0 && counts.available >= counts.updated, message };
}

type JsonPatchOp = { op: 'add' | 'replace' | 'remove' | 'test'; path: string; value?: unknown };

const pointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * JSON Patch operations that turn `from` into `to`, as deep as both have the same shape. Fields this client does
 * not know (newer than its API version) are in neither view and so are left as the server has them, where
 * replacing the whole template would drop them.
 */
function diff(path: string, from: unknown, to: unknown, ops: JsonPatchOp[]): JsonPatchOp[] {
  if (same(from, to)) return ops;
  if (isObject(from) && isObject(to)) {
    for (const key of Object.keys(from)) if (from[key] !== undefined && to[key] === undefined) ops.push({ op: 'remove', path: `${path}/${pointer(key)}` });
    for (const key of Object.keys(to)) {
      if (to[key] === undefined) continue;
      if (from[key] === undefined) ops.push({ op: 'add', path: `${path}/${pointer(key)}`, value: to[key] });
      else diff(`${path}/${pointer(key)}`, from[key], to[key], ops);
    }
  } else if (Array.isArray(from) && Array.isArray(to) && from.length === to.length) {
    from.forEach((item, i) => diff(`${path}/${i}`, item, to[i], ops));
  } else ops.push({ op: 'replace', path, value: to });
  return ops;
}

function withoutHash<T extends { metadata?: { labels?: Record<string, string> } }>(template: T): T {
  const labels = { ...(template.metadata?.labels ?? {}) };
  delete labels[HASH_LABEL];
  return { ...template, metadata: { ...template.metadata, labels } };
}

function imagesOf(d: V1Deployment): Record<string, string> {
  return Object.fromEntries((d.spec?.template.spec?.containers ?? []).map((c) => [c.name, c.image ?? '']));
}

export function createK8sActivities(deps: { inventory: Inventory }) {
  const { inventory } = deps;

  function settings(ref: K8sRef) {
    const kube = inventory.kubernetes(ref.environment);
    const service = kube.services[ref.service];
    if (!service) {
      const known = Object.keys(kube.services);
      throw new UnknownTargetError(`unknown Kubernetes service "${ref.service}" in ${ref.environment} (services: ${known.length ? known.join(', ') : 'none'})`);
    }
    return { kube, service };
  }

  /** API clients for the environment's context; the kubeconfig is read at every call, so a renewed one is used. */
  async function cluster(ref: K8sRef) {
    const { kube, service } = settings(ref);
    const k8s = await kubernetesClient();
    const kc = new k8s.KubeConfig();
    let source = '$KUBECONFIG or ~/.kube/config';
    if (kube.kubeconfig) {
      source = inventory.filePath(kube.kubeconfig);
      if (!existsSync(source)) throw new UnknownTarget(`kubeconfig ${source} not found`);
      kc.loadFromFile(source);
    } else kc.loadFromDefault();
    const contexts = kc.getContexts().map((c) => c.name);
    if (!contexts.includes(kube.context)) throw new UnknownTarget(`unknown context "${kube.context}" in ${source} (contexts: ${contexts.join(', ') || 'none'})`);
    kc.setCurrentContext(kube.context);
    return { k8s, apps: kc.makeApiClient(k8s.AppsV1Api), core: kc.makeApiClient(k8s.CoreV1Api), server: kc.getCurrentCluster()?.server, kube, service, namespace: service.namespace };
  }

  function deploymentOf(ref: K8sRef & { deployment: string }, service: K8sServiceConfig) {
    const d = service.deployments.find((x) => x.name === ref.deployment);
    if (!d) throw new UnknownTarget(`"${ref.deployment}" is not a deployment of ${ref.service} in ${ref.environment}`);
    return d;
  }

  async function readDeployment(apps: AppsV1Api, namespace: string, name: string): Promise<V1Deployment> {
    return call(`deployment ${namespace}/${name}`, () => apps.readNamespacedDeployment({ name, namespace }));
  }

  /** The ReplicaSets the deployment controls (its selector may match others'). */
  async function replicaSetsOf(apps: AppsV1Api, d: V1Deployment): Promise<V1ReplicaSet[]> {
    const namespace = d.metadata?.namespace as string;
    const list = await call(`ReplicaSets of ${namespace}/${d.metadata?.name}`, () => apps.listNamespacedReplicaSet({ namespace, labelSelector: selectorString(d.spec?.selector) }));
    return list.items.filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.controller && o.uid === d.metadata?.uid));
  }

  async function podsOf(core: CoreV1Api, d: V1Deployment): Promise<V1Pod[]> {
    const namespace = d.metadata?.namespace as string;
    const list = await call(`pods of ${namespace}/${d.metadata?.name}`, () => core.listNamespacedPod({ namespace, labelSelector: selectorString(d.spec?.selector) }));
    return list.items.filter((p) => !p.metadata?.deletionTimestamp);
  }

  /** Refuses a deployment that was deleted and created again since it was recorded: its history is another's. */
  function sameDeployment(d: V1Deployment, uid: string): void {
    if (d.metadata?.uid !== uid) throw new DeploymentReplaced(`deployment ${d.metadata?.namespace}/${d.metadata?.name} was replaced since it was recorded (uid ${uid}, now ${d.metadata?.uid})`);
  }

  return {
    /** Where the service runs and how its rollouts are followed; checks the context exists, touches nothing. */
    async k8sPlan(ref: K8sRef): Promise<K8sPlan> {
      const { server, kube, service } = await cluster(ref);
      return {
        context: kube.context,
        server,
        namespace: service.namespace,
        deployments: service.deployments.map((d) => ({ name: d.name, containers: [...d.containers] })),
        rolloutTimeoutMs: ms(service.rolloutTimeout),
        watch: { periodMs: ms(service.watch.period), intervalMs: ms(service.watch.interval), notReadyGraceMs: ms(service.watch.notReadyGrace), maxRestarts: service.watch.maxRestarts },
        checks: service.checks,
        migration: service.migration,
      };
    },

    /** The deployment's current revision, its ReplicaSet and images, once the controller has caught up with it. */
    async k8sRecord(ref: K8sRef & { deployment: string }): Promise<DeploymentRecord> {
      const { apps, service, namespace } = await cluster(ref);
      const declared = deploymentOf(ref, service);
      const d = await readDeployment(apps, namespace, ref.deployment);
      const images = imagesOf(d);
      const missing = declared.containers.filter((c) => images[c] === undefined);
      if (missing.length) throw new UnknownTarget(`deployment ${namespace}/${ref.deployment} has no container ${missing.map((c) => `"${c}"`).join(', ')} (containers: ${Object.keys(images).join(', ')})`);
      if (d.spec?.paused) throw new DeploymentPaused(`deployment ${namespace}/${ref.deployment} is paused: resume it (kubectl rollout resume) before deploying`);
      if ((d.metadata?.generation ?? 0) > (d.status?.observedGeneration ?? 0)) throw new NotObserved(`deployment ${namespace}/${ref.deployment}: the controller has not seen generation ${d.metadata?.generation} yet`);
      const revision = d.metadata?.annotations?.[REVISION];
      const rs = (await replicaSetsOf(apps, d)).find((r) => r.metadata?.annotations?.[REVISION] === revision);
      if (!revision || !rs?.metadata?.name) throw new NoRevision(`deployment ${namespace}/${ref.deployment} has no ReplicaSet for its current revision ${revision ?? '(none)'} yet`);
      return { name: ref.deployment, uid: d.metadata?.uid as string, revision, replicaSet: rs.metadata.name, images, changeCause: d.metadata?.annotations?.[CHANGE_CAUSE] };
    },

    /** `kubectl set image` with a change-cause: a strategic merge patch, the same every time it is sent. */
    async k8sSetImages(ref: K8sRef & { deployment: string; uid: string; images: Record<string, string>; changeCause: string }): Promise<{ generation: number }> {
      const { k8s, apps, namespace } = await cluster(ref);
      sameDeployment(await readDeployment(apps, namespace, ref.deployment), ref.uid);
      const body = {
        metadata: { annotations: { [CHANGE_CAUSE]: ref.changeCause } },
        spec: { template: { spec: { containers: Object.entries(ref.images).map(([name, image]) => ({ name, image })) } } },
      };
      const patched = await call(`set image on ${namespace}/${ref.deployment}`, () =>
        apps.patchNamespacedDeployment({ name: ref.deployment, namespace, body, fieldManager: 'opsflow' }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch)),
      );
      return { generation: patched.metadata?.generation ?? 0 };
    },

    /**
     * Follows the rollout until its state changes from `since`, it ends, or `maxWaitMs` passes, heartbeating the
     * progress meanwhile; the workflow calls it again until the rollout is done or has failed.
     */
    async k8sRolloutStatus(ref: K8sRef & { deployment: string; since?: string; maxWaitMs: number }): Promise<RolloutProgress> {
      const ctx = Context.current();
      const { apps, namespace } = await cluster(ref);
      const until = Date.now() + ref.maxWaitMs;
      for (;;) {
        const progress = rolloutStatus(await readDeployment(apps, namespace, ref.deployment));
        ctx.heartbeat({ deployment: ref.deployment, ...progress });
        if (progress.done || progress.failed || progress.message !== ref.since || Date.now() >= until) return progress;
        await ctx.sleep(Math.min(1_000, Math.max(until - Date.now(), 1)));
      }
    },

    /**
     * `kubectl rollout undo --to-revision`: puts the recorded revision's pod template (its ReplicaSet's, less the
     * hash label) back in the deployment, with that revision's annotations. Nothing to do when it is already there.
     */
    async k8sUndo(ref: K8sRef & { deployment: string; uid: string; replicaSet: string; revision: string }): Promise<{ skipped: boolean }> {
      const { apps, namespace } = await cluster(ref);
      const d = await readDeployment(apps, namespace, ref.deployment);
      sameDeployment(d, ref.uid);
      let rs: V1ReplicaSet;
      try {
        rs = await apps.readNamespacedReplicaSet({ name: ref.replicaSet, namespace });
      } catch (err) {
        const e = apiError(err, `ReplicaSet ${namespace}/${ref.replicaSet}`);
        if ((err as { code?: number }).code === 404) throw new RevisionGone(`cannot roll ${ref.deployment} back: ReplicaSet ${ref.replicaSet} of revision ${ref.revision} is gone (revisionHistoryLimit?)`);
        throw e;
      }
      if (!rs.metadata?.ownerReferences?.some((o) => o.uid === ref.uid)) throw new RevisionGone(`ReplicaSet ${ref.replicaSet} no longer belongs to ${ref.deployment}`);
      const current = d.spec?.template;
      const target = withoutHash(rs.spec?.template ?? {});
      if (same(withoutHash(current ?? {}), target)) return { skipped: true };
      const annotations: Record<string, string> = {};
      for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) if (UNDO_KEEPS.has(k)) annotations[k] = v;
      for (const [k, v] of Object.entries(rs.metadata?.annotations ?? {})) if (!UNDO_KEEPS.has(k)) annotations[k] = v;
      // Tested against the version read: a deployment changed meanwhile fails the patch, and the retry reads again.
      const body: JsonPatchOp[] = [
        { op: 'test', path: '/metadata/resourceVersion', value: d.metadata?.resourceVersion },
        ...diff('/spec/template', current, target, []),
        { op: 'add', path: '/metadata/annotations', value: annotations },
      ];
      const k8s = await kubernetesClient();
      try {
        await apps.patchNamespacedDeployment({ name: ref.deployment, namespace, body, fieldManager: 'opsflow' }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
      } catch (err) {
        const what = `roll back ${namespace}/${ref.deployment} to revision ${ref.revision}`;
        // A failed test of the resourceVersion: someone changed the deployment meanwhile; the retry reads it again.
        if ([409, 422].includes((err as { code?: number }).code ?? 0)) throw new Conflict(apiError(err, what).message);
        throw apiError(err, what);
      }
      return { skipped: false };
    },

    /**
     * Watches the deployments' pods for `periodMs`: restarts beyond the allowance, crash loops and pull errors,
     * pods not ready past the grace period, and the HTTP checks. Returns the first problem it sees; a retry after
     * a crash goes on from the elapsed time it last heartbeat.
     */
    async k8sWatch(ref: K8sRef & { deployments: string[]; periodMs: number; intervalMs: number; notReadyGraceMs: number; maxRestarts: number; checks: K8sServiceConfig['checks'] }): Promise<WatchResult> {
      const ctx = Context.current();
      const { apps, core, namespace } = await cluster(ref);
      const progress: WatchProgress = (ctx.info.heartbeatDetails as WatchProgress | undefined) ?? { elapsedMs: 0, looks: 0, baseline: {} };
      for (;;) {
        const started = Date.now();
        const problems: string[] = [];
        let pods = 0;
        let restarts = 0;
        for (const name of ref.deployments) {
          const d = await readDeployment(apps, namespace, name);
          for (const pod of await podsOf(core, d)) {
            pods++;
            const podName = pod.metadata?.name ?? '?';
            const statuses = pod.status?.containerStatuses ?? [];
            const count = statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0);
            const uid = pod.metadata?.uid ?? podName;
            progress.baseline[uid] ??= count;
            restarts += Math.max(0, count - progress.baseline[uid]);
            for (const c of statuses) {
              const reason = c.state?.waiting?.reason;
              if (reason && BAD_WAITING.has(reason)) problems.push(`pod ${podName} container ${c.name}: ${reason}${c.state?.waiting?.message ? ` (${c.state.waiting.message})` : ''}`);
            }
            const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
            if (ready?.status !== 'True') {
              const since = new Date(ready?.lastTransitionTime ?? pod.metadata?.creationTimestamp ?? Date.now()).getTime();
              if (Date.now() - since > ref.notReadyGraceMs) problems.push(`pod ${podName} not ready for ${Math.round((Date.now() - since) / 1000)}s${ready?.reason ? ` (${ready.reason})` : ''}`);
            }
          }
        }
        if (restarts > ref.maxRestarts) problems.unshift(`${restarts} container restart(s) during the watch (allowed: ${ref.maxRestarts})`);
        const checks = await Promise.all(ref.checks.map((c) => runCheck({ kind: 'http', ...c }, { name: ref.service, address: '' }, () => Promise.reject(new Error('not a host check')))));
        for (const c of checks.filter((x) => !x.ok)) problems.push(`${c.check}: ${c.detail}`);
        progress.looks++;
        const result = { looks: progress.looks, pods, restarts, checks };
        if (problems.length) return { ok: false, problem: problems.join('; '), ...result };
        progress.elapsedMs += Date.now() - started;
        ctx.heartbeat(progress);
        if (progress.elapsedMs >= ref.periodMs) return { ok: true, ...result };
        // Heartbeats while it waits, however long the interval: a dead worker is noticed within the heartbeat timeout.
        const until = progress.elapsedMs + Math.min(ref.intervalMs, ref.periodMs - progress.elapsedMs);
        while (progress.elapsedMs < until) {
          const pause = Math.min(5_000, until - progress.elapsedMs);
          await ctx.sleep(pause);
          progress.elapsedMs += pause;
          ctx.heartbeat(progress);
        }
      }
    },
  };
}
