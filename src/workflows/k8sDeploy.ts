import { isCancellation, log, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { DeploymentRecord, K8sPlan, K8sRef, RolloutProgress, WatchResult } from '../activities/k8s';
import { SA_ENVIRONMENT, SA_RELEASE, SA_SERVICE } from '../common/constants';
import { k8sDeployInput, releaseOf, type K8sDeployInput } from '../schemas/k8sDeploy';
import { parseInput } from '../schemas/validate';
import { Runbook } from '../runbook';
import { activitiesFor, HEARTBEAT_TIMEOUT, retry } from './activityOptions';

const policy = { maximumAttempts: 6 };

/** Reads and patches: a few API calls each. */
const kube = proxyActivities<Activities>({ startToCloseTimeout: '1m', heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: retry(policy) });

/** Long polls of a rollout. They heartbeat, so a worker that dies is replaced within the heartbeat timeout. */
const follow = proxyActivities<Activities>({ startToCloseTimeout: '2m', heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: retry({ maximumAttempts: 10 }) });
const POLL_MS = 30_000;

export const MIGRATION_WARNING = 'This release declared a database migration: rolling back the images does not undo it, the database keeps the migrated schema (runbook: fix forward or restore the database).';

export interface K8sDeployResult {
  ok: boolean;
  dryRun: boolean;
  environment: string;
  service: string;
  release?: string;
  context: string;
  namespace: string;
  deployments: {
    name: string;
    /** What ran before: the revision a rollback returns to, and its images. */
    before: { revision: string; images: Record<string, string> };
    /** The images this release set. */
    images: Record<string, string>;
    after?: { revision: string; images: Record<string, string> };
    outcome: 'updated' | 'unchanged';
  }[];
  watch?: WatchResult;
  /** The migration warning, when the release declared one. */
  warnings: string[];
  plan?: string[];
}

const ms = (d: string) => msToNumber(d as Duration);
const imageList = (images: Record<string, string>) => Object.entries(images).map(([c, i]) => `${c}=${i}`).join(' ');

/**
 * Follows a rollout to its end the way `kubectl rollout status` does, one long poll at a time, and puts each
 * change of its progress ("2/3 pods updated, …") in the run's timeline.
 */
async function followRollout(rb: Runbook, ref: K8sRef, deployment: string, timeoutMs: number): Promise<RolloutProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  for (;;) {
    const p = await follow.k8sRolloutStatus({ ...ref, deployment, since: last, maxWaitMs: Math.max(1_000, Math.min(POLL_MS, deadline - Date.now())) });
    if (p.message !== last) {
      const at = new Date().toISOString();
      rb.recordStep({ name: `rollout ${deployment}: ${p.message}`, state: p.failed ? 'failed' : 'succeeded', attempt: 1, startedAt: at, endedAt: at });
      last = p.message;
    }
    if (p.done || p.failed || Date.now() >= deadline) return p;
  }
}

/**
 * Deploys a release's images to a service's deployments on Kubernetes, one deployment after the other, each
 * rolled out before the next; watches the pods; and on a failed rollout, a failed watch, a rejection, an abort or
 * a cancellation rolls every changed deployment back to the revision recorded before it changed.
 */
export async function k8sDeploy(rawInput: K8sDeployInput): Promise<K8sDeployResult> {
  const input = parseInput('k8sDeploy', k8sDeployInput, rawInput);
  const release = releaseOf(input);
  upsertSearchAttributes([
    { key: SA_ENVIRONMENT, value: input.environment },
    { key: SA_SERVICE, value: input.service },
    ...(release ? [{ key: SA_RELEASE, value: release }] : []),
  ]);
  const rb = new Runbook({ workflow: 'k8sDeploy', environment: input.environment, service: input.service, release, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, announce: !input.dryRun, notify: input.notify });
  return rb.run(() => deploy(rb, input, release));
}

async function deploy(rb: Runbook, input: ReturnType<typeof k8sDeployInput.parse>, release: string | undefined): Promise<K8sDeployResult> {
  const ref: K8sRef = { environment: input.environment, service: input.service };

  rb.phase('resolve');
  const plan: K8sPlan = await rb.step('resolve deployments', () => kube.k8sPlan(ref), { required: true });
  const declared = plan.deployments.flatMap((d) => d.containers);
  const unknown = Object.keys(input.images ?? {}).filter((c) => !declared.includes(c));
  if (unknown.length) {
    return rb.fail(`invalid input for k8sDeploy:\n${unknown.map((c) => `- images.${c}: no deployment of ${input.service} declares this container (containers: ${[...new Set(declared)].join(', ')})`).join('\n')}`, 'InvalidInput');
  }
  const records: DeploymentRecord[] = [];
  for (const d of plan.deployments) records.push(await rb.step(`record ${d.name}`, () => kube.k8sRecord({ ...ref, deployment: d.name }), { required: true }));
  const targets = plan.deployments.map((d, i) => {
    const images = Object.fromEntries(
      d.containers.flatMap((c) => {
        const image = input.image ?? input.images?.[c];
        return image ? [[c, image]] : [];
      }),
    );
    return { name: d.name, record: records[i], images, changed: Object.entries(images).some(([c, image]) => records[i].images[c] !== image) };
  });
  const migration = input.migration ?? plan.migration;
  const watchMs = input.watch !== undefined ? ms(input.watch) : plan.watch.periodMs;
  const result: K8sDeployResult = {
    ok: false,
    dryRun: input.dryRun,
    environment: input.environment,
    service: input.service,
    release,
    context: plan.context,
    namespace: plan.namespace,
    deployments: targets.map((t) => ({ name: t.name, before: { revision: t.record.revision, images: t.record.images }, images: t.images, outcome: t.changed ? 'updated' : 'unchanged' })),
    warnings: migration ? [MIGRATION_WARNING] : [],
  };
  const changing = targets.filter((t) => t.changed);
  const where = `${plan.context}/${plan.namespace}`;

  if (input.dryRun) {
    await rb.succeed();
    return {
      ...result,
      ok: true,
      plan: [
        ...(input.approval ? ['gate deploy: approval before anything changes'] : []),
        ...changing.flatMap((t) => [
          `${where} deployment ${t.name} (revision ${t.record.revision}): set image ${imageList(t.images)} (now ${imageList(t.record.images)}), change-cause naming this run`,
          `wait for the rollout of ${t.name} (progress deadline, at most ${plan.rolloutTimeoutMs / 1000}s); on failure roll back to revision ${t.record.revision}`,
        ]),
        ...(watchMs > 0 && changing.length ? [`watch the pods for ${watchMs / 1000}s: restarts (at most ${plan.watch.maxRestarts}), crash loops, not ready for ${plan.watch.notReadyGraceMs / 1000}s${plan.checks.length ? `, ${plan.checks.length} HTTP check(s)` : ''}`] : []),
        ...(input.promote && changing.length ? ['gate promote: approval to keep the release; a rejection rolls back'] : []),
        ...(changing.length ? [] : ['nothing to change: every deployment already runs these images']),
      ],
    };
  }
  if (!changing.length) {
    await rb.succeed(`${input.service} already runs ${release ?? 'these images'} in ${input.environment}`);
    return { ...result, ok: true };
  }

  const changes = changing.map((t) => `${t.name} (revision ${t.record.revision}): ${Object.entries(t.images).map(([c, image]) => `${c} ${t.record.images[c]} → ${image}`).join(', ')}`).join('\n');
  if (input.approval) {
    rb.phase('approval');
    const outcome = await rb.approval('deploy', input.approval, `deploy ${release ?? 'new images'} of ${input.service} to ${input.environment} (${where})${migration ? '; it migrates the database, which a rollback does not undo' : ''}`, changes);
    if (!outcome.approved) return rb.fail(outcome.reason, 'Rejected');
  }

  const touched: typeof changing = [];
  const rollback = () => (touched.length ? `; rolled back ${touched.map((t) => `${t.name} to revision ${t.record.revision}`).reverse().join(', ')}${migration ? `. ${MIGRATION_WARNING}` : ''}` : '');
  const { workflowId, runId } = workflowInfo();

  rb.phase('rollout');
  for (const t of changing) {
    const target = { ...ref, deployment: t.name };
    touched.push(t);
    // Registered before the change: an undo of a deployment that did not change finds nothing to do.
    rb.compensate(`roll ${t.name} back to revision ${t.record.revision}`, async () => {
      await kube.k8sUndo({ ...target, uid: t.record.uid, replicaSet: t.record.replicaSet, revision: t.record.revision });
      const back = await followRollout(rb, ref, t.name, plan.rolloutTimeoutMs);
      if (!back.done) throw new Error(`${t.name} did not roll back: ${back.failed ?? back.message}`);
    });
    const changeCause = `opsflow k8sDeploy ${workflowId} (run ${runId}): set image ${imageList(t.images)}`;
    await rb.step(`set image ${t.name}`, () => kube.k8sSetImages({ ...target, uid: t.record.uid, images: t.images, changeCause }), { required: true });
    const progress = await rb.step(`rollout ${t.name}`, () => followRollout(rb, ref, t.name, plan.rolloutTimeoutMs), { required: true });
    if (!progress.done) return rb.fail(`${t.name} did not roll out: ${progress.failed ?? `not done after ${plan.rolloutTimeoutMs / 1000}s (${progress.message})`}${rollback()}`, 'RolloutFailed');
  }

  if (watchMs > 0) {
    rb.phase('watch');
    const watcher = activitiesFor(watchMs, policy);
    const watch = await rb.step('watch', () => watcher.k8sWatch({ ...ref, deployments: changing.map((t) => t.name), ...plan.watch, periodMs: watchMs, checks: plan.checks }), { required: true });
    result.watch = watch;
    if (!watch.ok) return rb.fail(`the watch found trouble: ${watch.problem}${rollback()}`, 'WatchFailed');
  }

  if (input.promote) {
    rb.phase('promote');
    const evidence = result.watch ? `${result.watch.looks} look(s) at ${result.watch.pods} pod(s), ${result.watch.restarts} restart(s)${result.watch.checks.map((c) => `\n${c.check}: ${c.detail}`).join('')}` : undefined;
    const outcome = await rb.approval('promote', input.promote, `${input.service} ${release ?? ''} is live in ${input.environment}: keep it? (reject rolls back)`, `${changes}${evidence ? `\n\n${evidence}` : ''}`);
    if (!outcome.approved) return rb.fail(`${outcome.reason}${rollback()}`, 'Rejected');
  }
  // Live and healthy: nothing that follows rolls it back.
  rb.commit();

  rb.phase('finish');
  for (const t of changing) {
    try {
      const after = await rb.track(`record ${t.name}`, () => kube.k8sRecord({ ...ref, deployment: t.name }));
      const entry = result.deployments.find((d) => d.name === t.name);
      if (entry) entry.after = { revision: after.revision, images: after.images };
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn('could not record the new revision; the release is live regardless', { deployment: t.name, error: String(err) });
    }
  }
  await rb.succeed(`${input.service} ${release ?? ''} is live in ${input.environment}: ${changing.map((t) => t.name).join(', ')}`);
  return { ...result, ok: true };
}
