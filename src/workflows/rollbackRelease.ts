import { upsertSearchAttributes } from '@temporalio/workflow';
import { SA_ENVIRONMENT, SA_RELEASE, SA_SERVICE } from '../common/constants';
import { rollbackReleaseInput, type RollbackReleaseInput } from '../schemas/release';
import { parseInput } from '../schemas/validate';
import { Runbook } from '../runbook';
import { quick, undoableSwitch } from './rollout';

export interface RollbackResult {
  ok: boolean;
  dryRun: boolean;
  nodes: { node: string; from: string | null; to: string; outcome: 'switched' | 'unchanged' | 'planned' }[];
}

/**
 * Puts a service's nodes back on an earlier release (or each node's previous one), node by node. Ending early (a
 * failure, an abort, a rejection, a cancellation) puts the nodes already switched back where they were: the
 * service is never left half on one release and half on another.
 */
export async function rollbackRelease(rawInput: RollbackReleaseInput): Promise<RollbackResult> {
  const input = parseInput('rollbackRelease', rollbackReleaseInput, rawInput);
  const { environment, service } = input;
  upsertSearchAttributes([
    { key: SA_ENVIRONMENT, value: environment },
    { key: SA_SERVICE, value: service },
    ...(input.to ? [{ key: SA_RELEASE, value: input.to }] : []),
  ]);
  const rb = new Runbook({ workflow: 'rollbackRelease', environment, service, release: input.to, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, notify: input.notify });
  return rb.run(async () => {
    const ref = (node: string) => ({ environment, service, node });

    rb.phase('resolve');
    const plan = await rb.step('resolve service', () => quick.resolveService({ environment, service }), { required: true });
    const targets = await rb.step(
      'choose the release per node',
      async () =>
        Promise.all(
          plan.nodes.map(async (n) => {
            const { live, releases } = await quick.listReleases(ref(n.name));
            const to = input.to ?? releases.find((r) => r !== live);
            if (!to || !releases.includes(to)) throw new Error(`${n.name}: ${input.to ? `release ${input.to} is not installed` : 'no earlier release is installed'} (installed: ${releases.join(', ') || 'none'})`);
            return { node: n.name, from: live, to };
          }),
        ),
      { required: true },
    );
    const planned = targets.map((t) => ({ ...t, outcome: t.from === t.to ? ('unchanged' as const) : ('planned' as const) }));
    if (input.dryRun) {
      await rb.succeed();
      return { ok: true, dryRun: true, nodes: planned };
    }
    if (input.approval) {
      rb.phase('approval');
      const outcome = await rb.approval('rollback', input.approval, `roll ${service} back: ${targets.map((t) => `${t.node} ${t.from} → ${t.to}`).join(', ')}`);
      if (!outcome.approved) return rb.fail(outcome.reason, 'Rejected');
    }
    rb.phase('rollback');
    const nodes: RollbackResult['nodes'] = [];
    const switchNode = undoableSwitch(rb, plan.waitMs);
    for (const t of targets) {
      if (t.from === t.to) {
        nodes.push({ ...t, outcome: 'unchanged' });
        continue;
      }
      await rb.step(`roll ${t.node} back to ${t.to}`, () => switchNode(ref(t.node), t.to, t.from), { host: t.node, required: true });
      nodes.push({ ...t, outcome: 'switched' });
    }
    // Every node is on the release asked for and healthy: a late cancel must not undo the rollback.
    rb.commit();
    await rb.succeed();
    return { ok: true, dryRun: false, nodes };
  });
}
