// Kubernetes in the inventory, per environment: which kubeconfig context reaches the cluster, and for each
// service the namespace and the deployments a release changes, in order, with how long a rollout may take,
// how long it is watched afterwards and what is checked meanwhile. Credentials stay in the kubeconfig file,
// which only activities read; nothing of it reaches workflow history.
import { z } from 'zod';
import { duration, name } from '../schemas/common';
import { k8sName } from '../schemas/k8sDeploy';
import { httpCheckSchema } from './systems';

export const k8sDeploymentSchema = z.strictObject({
  name: z.string().max(253).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a Kubernetes object name: lower-case letters, digits, "-" and "."'),
  /** Containers whose image a release sets, e.g. [app]; the others (sidecars) keep theirs. */
  containers: z.array(k8sName).min(1),
});

export const k8sServiceSchema = z.strictObject({
  namespace: k8sName,
  /** Changed in this order, each rolled out before the next; a rollback undoes them in reverse. */
  deployments: z
    .array(k8sDeploymentSchema)
    .min(1)
    .refine((ds) => new Set(ds.map((d) => d.name)).size === ds.length, 'a deployment appears twice'),
  /**
   * The longest wait for one deployment's rollout. The deployment's own progressDeadlineSeconds fails a rollout
   * that stops making progress sooner; this bounds one that progresses too slowly.
   */
  rolloutTimeout: duration.default('15m'),
  /** After the rollout: how long to watch the pods, and how often to look. */
  watch: z
    .strictObject({
      period: duration.default('5m'),
      interval: duration.default('10s'),
      /** A pod that has not been ready for this long fails the watch. */
      notReadyGrace: duration.default('30s'),
      /** Container restarts tolerated across the service's pods during the watch. */
      maxRestarts: z.number().int().min(0).default(0),
    })
    .default({ period: '5m', interval: '10s', notReadyGrace: '30s', maxRestarts: 0 }),
  /** Fetched from the worker at every look of the watch; one that fails fails the watch. */
  checks: z.array(httpCheckSchema).default([]),
  /** Releases of this service migrate the database when they start (a release may say otherwise). */
  migration: z.boolean().default(false),
});
export type K8sServiceConfig = z.output<typeof k8sServiceSchema>;

export const kubernetesSchema = z.strictObject({
  /** Relative to the inventory file; absent: $KUBECONFIG, then ~/.kube/config. */
  kubeconfig: z.string().min(1).optional(),
  /** The kubeconfig context that reaches this environment's cluster. */
  context: z.string().min(1),
  services: z.record(name, k8sServiceSchema).default({}),
});
export type KubernetesConfig = z.output<typeof kubernetesSchema>;
