import { z } from 'zod';
import { approvalGate, duration, fourEyesNeedsRequester, name, runFields, workflowInput } from './common';

/** A Kubernetes name that is also a DNS label (namespaces, containers). */
export const k8sName = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes name: lower-case letters, digits and "-", at most 63');

// The grammar of container image references (github.com/distribution/reference): [registry[:port]/]path[:tag][@digest].
const pathComponent = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domain = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const IMAGE_REFERENCE = new RegExp(
  `^((?:${domain}/)?${pathComponent}(?:/${pathComponent})*)(?::([\\w][\\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$`,
);

export interface ImageReference {
  name: string;
  tag?: string;
  digest?: string;
}

export function parseImageReference(ref: string): ImageReference | undefined {
  const m = IMAGE_REFERENCE.exec(ref);
  if (!m || m[1].length > 255) return undefined;
  return { name: m[1], tag: m[2], digest: m[3] };
}

/** The run's release label: the one given, else the single image's tag (or digest). */
export function releaseOf(input: { release?: unknown; image?: unknown }): string | undefined {
  if (typeof input.release === 'string') return input.release;
  const ref = typeof input.image === 'string' ? parseImageReference(input.image) : undefined;
  return ref?.tag ?? ref?.digest?.slice(0, 19);
}

/**
 * A pinned image: a tag or a digest. Without either the cluster pulls `latest`, which names no particular build:
 * the revision recorded for a rollback would not say what ran.
 */
export const imageReference = z.string().superRefine((ref, ctx) => {
  const parsed = parseImageReference(ref);
  if (!parsed) ctx.addIssue({ code: 'custom', message: `"${ref}" is not an image reference such as registry.example.com/team/app:1.4.2 or app@sha256:…` });
  else if (!parsed.tag && !parsed.digest) ctx.addIssue({ code: 'custom', message: `"${ref}" names no tag or digest: pin the build to deploy` });
});

export const k8sDeployInput = workflowInput(() =>
  z
    .strictObject({
      environment: name,
      /** A service of the environment's kubernetes section in the inventory. */
      service: name,
      /** One image for every container the service's deployments declare… */
      image: imageReference.optional(),
      /** …or an image per container name; containers not named keep theirs. */
      images: z.record(k8sName, imageReference).optional(),
      /** A label for the run (the OpsRelease search attribute); default: the image's tag. */
      release: z.string().trim().min(1).max(128).optional(),
      /** This release migrates the database; default: the service's `migration` setting in the inventory. */
      migration: z.boolean().optional(),
      /** Overrides how long the pods are watched after the rollout; "0s" skips the watch. */
      watch: duration.optional(),
      /** An approval gate before anything changes. */
      approval: approvalGate.optional(),
      /** An approval gate after the watch: a rejection (or its timeout) rolls the release back. */
      promote: approvalGate.optional(),
      ...runFields,
    })
    .superRefine((input, ctx) => {
      if ((input.image === undefined) === (input.images === undefined)) ctx.addIssue({ code: 'custom', path: ['image'], message: 'give exactly one of image or images' });
      else if (input.images && Object.keys(input.images).length === 0) ctx.addIssue({ code: 'custom', path: ['images'], message: 'names no container' });
      fourEyesNeedsRequester(input, [input.approval, input.promote], ctx);
    }),
);

export type K8sDeployInput = z.input<typeof k8sDeployInput>;
