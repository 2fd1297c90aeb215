import { log, upsertSearchAttributes } from '@temporalio/workflow';
import type { HealthResult, ServicePlan } from '../activities/release';
import { SA_ENVIRONMENT, SA_RELEASE, SA_SERVICE } from '../common/constants';
import { blueGreenDeployInput, type BlueGreenDeployInput } from '../schemas/release';
import { parseInput } from '../schemas/validate';
import { Runbook, SKIPPED } from '../runbook';
import { batches, describeHealth, quick, slow, undoableSwitch } from './rollout';

export interface BlueGreenResult {
  ok: boolean;
  dryRun: boolean;
  release: string;
  /** The release each node ran before. */
  previous: Record<string, string | null>;
  nodes: { node: string; outcome: 'switched' | 'unchanged'; health?: HealthResult }[];
  pruned: Record<string, string[]>;
  tag?: string;
  plan?: { node: string; steps: string[] }[];
}

function dryRunPlan(plan: ServicePlan, input: ReturnType<typeof blueGreenDeployInput.parse>): BlueGreenResult['plan'] {
  const { release } = input;
  const source = release.git ? `git clone ${release.git.repo} && checkout ${release.git.ref}` : `tar -xzf ${release.tarball}`;
  return plan.nodes.map((n, i) => ({
    node: n.name,
    steps: [
      `install ${n.root}/${release.id} from ${source}${n.build ? `, then in it: ${n.build}` : ''} (reused if already complete)`,
      ...(i === 0 && n.smoke ? [`smoke test in ${n.root}/${release.id}: ${n.smoke}`] : []),
      ...(plan.haproxy ? [`HAProxy ${plan.haproxy.backend}/${n.haproxyServer}: drain, wait for 0 sessions, maint`] : []),
      `ln -s ${n.root}/${release.id} ${n.live}.tmp && mv -T ${n.live}.tmp ${n.live}`,
      `restart: ${n.restart}`,
      `health: GET ${n.healthUrl}`,
      ...(plan.haproxy ? [`HAProxy ${plan.haproxy.backend}/${n.haproxyServer}: ready, wait for UP`] : []),
      ...(i === 0 && input.promote ? ['gate promote: approval before any green node'] : []),
    ],
  }));
}

/**
 * Zero-downtime release to the nodes of a service: install everywhere, smoke test, then the blue node (out of
 * rotation, switch, restart, health, back), a promote gate, then the green nodes. A failure on the blue node,
 * a rejection, an abort or cancelling the run puts every switched node back on its previous release; once every
 * node is healthy the release is committed, and nothing rolls it back.
 */
export async function blueGreenDeploy(rawInput: BlueGreenDeployInput): Promise<BlueGreenResult> {
  const input = parseInput('blueGreenDeploy', blueGreenDeployInput, rawInput);
  const { environment, service } = input;
  const id = input.release.id;
  upsertSearchAttributes([
    { key: SA_ENVIRONMENT, value: environment },
    { key: SA_SERVICE, value: service },
    { key: SA_RELEASE, value: id },
  ]);
  const rb = new Runbook({ workflow: 'blueGreenDeploy', environment, service, release: id, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, announce: !input.dryRun, notify: input.notify });
  return rb.run(async () => {
    const ref = (node: string) => ({ environment, service, node });

    rb.phase('resolve');
    const plan = await rb.step('resolve service', () => quick.resolveService({ environment, service }), { required: true });
    const result: BlueGreenResult = { ok: false, dryRun: input.dryRun, release: id, previous: {}, nodes: [], pruned: {} };
    if (input.dryRun) {
      await rb.succeed();
      return { ...result, ok: true, plan: dryRunPlan(plan, input) };
    }

    rb.phase('install');
    await Promise.all(plan.nodes.map((n) => rb.step(`install ${id}`, () => slow.installRelease({ ...ref(n.name), release: input.release }), { host: n.name, required: true })));
    const currents = await Promise.all(plan.nodes.map((n) => quick.currentRelease(ref(n.name))));
    plan.nodes.forEach((n, i) => (result.previous[n.name] = currents[i]));

    const [blue, ...green] = plan.nodes;
    if (blue.smoke && result.previous[blue.name] !== id) {
      rb.phase('smoke test');
      await rb.step('smoke test', () => slow.smokeTest({ ...ref(blue.name), releaseId: id }), { host: blue.name, required: true, onFailure: 'fail' });
    }

    const switchNode = undoableSwitch(rb, plan.waitMs);
    const deployNode = async (node: string): Promise<void> => {
      const previous = result.previous[node];
      if (previous === id) {
        result.nodes.push({ node, outcome: 'unchanged' });
        return;
      }
      result.nodes.push({ node, outcome: 'switched', health: await switchNode(ref(node), id, previous) });
    };

    rb.phase(`blue: ${blue.name}`);
    await rb.step(`deploy ${blue.name}`, () => deployNode(blue.name), { host: blue.name, required: true, onFailure: 'fail' });

    if (input.promote && green.length) {
      rb.phase('promote');
      const blueHealth = result.nodes.find((n) => n.node === blue.name)?.health;
      const outcome = await rb.approval(
        'promote',
        input.promote,
        `${blue.name} runs ${service} ${id}${blueHealth ? ' and is healthy' : ' (unchanged)'}: promote to ${green.map((n) => n.name).join(', ')}?`,
        blueHealth ? describeHealth(blueHealth) : `${blue.name} already ran ${id}`,
      );
      if (!outcome.approved) return rb.fail(`${outcome.reason}; switched nodes go back to their previous release`, 'Rejected');
    }

    rb.phase('green');
    for (const batch of batches(green, input.batchSize ?? plan.batchSize)) {
      await Promise.all(batch.map((n) => rb.step(`deploy ${n.name}`, () => deployNode(n.name), { host: n.name, required: true })));
    }
    // Every node is on the new release and healthy: what follows (a failure, a late cancel) must not roll it back.
    rb.commit();

    rb.phase('finish');
    for (const n of plan.nodes) {
      const protect = [id, ...(result.previous[n.name] ? [result.previous[n.name] as string] : [])];
      try {
        result.pruned[n.name] = await rb.track('prune old releases', () => quick.pruneReleases({ ...ref(n.name), protect }), n.name);
      } catch (err) {
        log.warn('pruning failed; the release is live regardless', { node: n.name, error: String(err) });
      }
    }
    if (input.tag && input.release.git) {
      const tag = input.tag.pattern.replace(/\{date\}/g, new Date().toISOString().slice(0, 10)).replace(/\{release\}/g, id);
      const git = input.release.git;
      if ((await rb.step(`tag ${tag}`, () => quick.tagRelease({ repo: git.repo, ref: git.ref, tag }))) !== SKIPPED) result.tag = tag;
    }
    await rb.succeed(`${service} ${id} is live in ${environment} on ${plan.nodes.map((n) => n.name).join(', ')}${result.tag ? `, tagged ${result.tag}` : ''}`);
    return { ...result, ok: true };
  });
}
