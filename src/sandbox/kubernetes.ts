// The sandbox's Kubernetes cluster for k8sDeploy, when the control plane's binaries are built
// (scripts/k8s-binaries.sh): the control plane of ./controlPlane.ts under sandbox/kubernetes on fixed loopback
// ports, each component a daemon with a pid file as the rest of the sandbox is; and in it namespace `shop` with
// deployment `web` on the demo image's first release. What `up` creates is kept in etcd, so `down` and `up` again
// find the release the last run left.
import { chmodSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { controlPlanePidFiles, controlPlaneStatus, ensureObject, missingBinaries, startControlPlane, stopControlPlane } from './controlPlane';
import { k8sImage, SANDBOX, SANDBOX_FILES } from './layout';
import { PROJECT_ROOT } from './paths';
import { until } from './processes';
import { giveToSudoUser } from './sudoUser';

const K = SANDBOX.kubernetes;

/** What the cluster needs and the machine lacks (binaries looked for in `binDir`); empty: `up` builds it. */
export function kubernetesMissing(binDir?: string): string[] {
  return missingBinaries(binDir).length ? ['bash scripts/k8s-binaries.sh (builds the control plane with Go into /opt/opsflow-k8s, tens of minutes once; scripts/setup.sh test runs it)'] : [];
}

/** What `up` says about the cluster: how to deploy to it, or what to install for it. */
export function kubernetesNote(missing: string[]): string {
  return missing.length
    ? `left out: the Kubernetes cluster (k8sDeploy); for it: ${missing.join('; ')}, then up again`
    : 'kubernetes: npx opsflow start k8sDeploy --input examples/sandbox/k8sDeploy.json';
}

interface Deployment {
  metadata: { generation: number };
  status?: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

/** Starts what of the control plane does not run, creates the namespace and the deployment unless they exist, and waits until it is available. */
export async function ensureKubernetes(): Promise<void> {
  const cp = await startControlPlane({ dir: SANDBOX_FILES.kubernetes, ports: K.ports, context: K.context, nodes: 1, detached: true });
  await ensureObject(cp, '/api/v1/namespaces', { metadata: { name: K.namespace } });
  await ensureObject(cp, `/apis/apps/v1/namespaces/${K.namespace}/deployments`, {
    metadata: { name: K.deployment },
    spec: {
      replicas: K.replicas,
      // Short, so that a release that never becomes ready fails within seconds, and is rolled back.
      progressDeadlineSeconds: 10,
      selector: { matchLabels: { app: K.deployment } },
      strategy: { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: { metadata: { labels: { app: K.deployment } }, spec: { containers: [{ name: K.container, image: k8sImage(K.releases[0]) }] } },
    },
  });
  await until(`deployment ${K.namespace}/${K.deployment} to be available`, async () => {
    const d = await cp.api<Deployment>('GET', `/apis/apps/v1/namespaces/${K.namespace}/deployments/${K.deployment}`).catch(() => undefined);
    return d?.status?.observedGeneration === d?.metadata.generation && d?.status?.availableReplicas === K.replicas && d?.status?.updatedReplicas === K.replicas;
  }, 60_000);
  // The admin's kubeconfig, for the worker; the control plane's own directory stays root's.
  copyFileSync(cp.kubeconfig, SANDBOX_FILES.kubeconfig);
  chmodSync(SANDBOX_FILES.kubeconfig, 0o600);
  giveToSudoUser(SANDBOX_FILES.kubeconfig);
}

/** One line for the cluster. */
export function kubernetesStatus(): string {
  const components = controlPlaneStatus(SANDBOX_FILES.kubernetes);
  const state = components.every((c) => c.running) ? 'running' : components.some((c) => c.running) ? `partly running (stopped: ${components.filter((c) => !c.running).map((c) => c.name).join(', ')})` : 'stopped';
  return `  kubernetes https://127.0.0.1:${K.ports.api} ${state} (context ${K.context} in ${path.relative(PROJECT_ROOT, SANDBOX_FILES.kubeconfig)}; deployment ${K.namespace}/${K.deployment} on KWOK nodes)`;
}

/** Stops the control plane's processes; returns what it stopped. */
export async function stopKubernetes(): Promise<string[]> {
  const stopped = await stopControlPlane(SANDBOX_FILES.kubernetes);
  return stopped.length ? [`Kubernetes (${stopped.join(', ')})`] : [];
}

export const kubernetesPidFiles = () => controlPlanePidFiles(SANDBOX_FILES.kubernetes);
