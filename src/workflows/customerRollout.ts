import { ChildWorkflowCancellationType, executeChild, isCancellation, ParentClosePolicy, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SA_ENVIRONMENT, SA_RELEASE } from '../common/constants';
import { customerRolloutInput, type CustomerRolloutInput } from '../schemas/customerRollout';
import { parseInput } from '../schemas/validate';
import { blueGreenDeploy } from './blueGreenDeploy';
import { describeError, Runbook } from '../runbook';
import { quick } from './rollout';

type Stage = 'staging' | 'production';

export interface StageOutcome {
  /** cancelled: the run was cancelled while this deploy ran; the deploy's own run undid what it changed. */
  state: 'succeeded' | 'failed' | 'not-started' | 'skipped' | 'cancelled';
  /** The child blueGreenDeploy run: its history has every step. */
  workflowId?: string;
  error?: string;
}

export interface CustomerOutcome {
  customer: string;
  staging: StageOutcome;
  production: StageOutcome;
}

export interface CustomerRolloutResult {
  ok: boolean;
  dryRun: boolean;
  release: string;
  customers: CustomerOutcome[];
  plan?: { customer: string; staging: string[]; production: string[] }[];
}

const describeOutcome = (s: StageOutcome) => `${s.state}${s.error ? ` (${s.error})` : ''}`;

/**
 * KARL's "for each deployed customer": a release for many customers, each a service of the inventory. Staging
 * first for every customer (child blueGreenDeploy runs, `concurrency` at a time), one promote gate with every
 * customer's staging outcome, then production for the customers that passed. A failed customer does not stop
 * the others unless `stopOnFailure` says so; the result lists each customer's outcome per stage. Cancelling
 * the rollout cancels the deploys in flight, each of which puts its nodes back; finished stages stay, as after a
 * rejection.
 */
export async function customerRollout(rawInput: CustomerRolloutInput): Promise<CustomerRolloutResult> {
  const input = parseInput('customerRollout', customerRolloutInput, rawInput);
  const id = input.release.id;
  const stages = input.stages;
  upsertSearchAttributes([
    { key: SA_ENVIRONMENT, value: stages.production },
    { key: SA_RELEASE, value: id },
  ]);
  const rb = new Runbook({ workflow: 'customerRollout', environment: stages.production, release: id, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, announce: !input.dryRun, notify: input.notify });
  const outcomes: CustomerOutcome[] = input.customers.map((customer) => ({ customer, staging: { state: 'not-started' }, production: { state: 'not-started' } }));
  const summary = () => outcomes.map((o) => `${o.customer}: staging ${describeOutcome(o.staging)}, production ${describeOutcome(o.production)}`).join('; ');

  return rb.run(async () => {
    rb.phase('resolve');
    // Every customer must exist in both stages before anything is deployed anywhere.
    const services = await rb.step(
      'resolve customers',
      () => Promise.all(input.customers.map(async (service) => ({ service, staging: await quick.resolveService({ environment: stages.staging, service }), production: await quick.resolveService({ environment: stages.production, service }) }))),
      { required: true },
    );
    const result: CustomerRolloutResult = { ok: false, dryRun: input.dryRun, release: id, customers: outcomes };
    if (input.dryRun) {
      await rb.succeed();
      const nodes = (p: (typeof services)[number]['staging']) => p.nodes.map((n) => `blueGreenDeploy ${id} on ${n.name} (${n.live})`);
      return { ...result, ok: true, plan: services.map((s) => ({ customer: s.service, staging: nodes(s.staging), production: nodes(s.production) })) };
    }

    let stopped = false;

    const deploy = async (stage: Stage, o: CustomerOutcome): Promise<void> => {
      const workflowId = `${workflowInfo().workflowId}/${stage}/${o.customer}`;
      const step = rb.beginStep(`${stage}: deploy ${id}`, 1, o.customer);
      try {
        await executeChild(blueGreenDeploy, {
          workflowId,
          // The rollout's gate is the human decision; a customer's failure is reported here, not held at its own gate.
          args: [{ environment: stages[stage], service: o.customer, release: input.release, failure: { onFailure: 'fail' }, requestedBy: input.requestedBy, notify: input.notify }],
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
          // Cancelling the rollout cancels the deploy, which undoes its own changes; the rollout ends after that.
          cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        });
        o[stage] = { state: 'succeeded', workflowId };
        rb.endStep(step, 'succeeded');
      } catch (err) {
        if (isCancellation(err)) {
          o[stage] = { state: 'cancelled', workflowId };
          rb.endStep(step, 'failed', 'cancelled; its run undid its changes');
          throw err;
        }
        const { message } = describeError(err);
        o[stage] = { state: 'failed', workflowId, error: message };
        rb.endStep(step, 'failed', message);
        if (input.stopOnFailure) stopped = true;
      }
    };

    /** Deploys the customers `concurrency` at a time; after a failure with stopOnFailure, no new one starts. */
    const runStage = async (stage: Stage, customers: CustomerOutcome[]): Promise<void> => {
      rb.phase(stage);
      let next = 0;
      const lane = async () => {
        while (next < customers.length && !stopped) await deploy(stage, customers[next++]);
      };
      // Every lane ends before the stage does: a cancelled rollout ends only after each cancelled deploy has undone.
      const lanes = await Promise.allSettled(Array.from({ length: Math.min(input.concurrency, customers.length) }, lane));
      const cancelled = lanes.find((l) => l.status === 'rejected');
      if (cancelled) throw cancelled.reason;
      if (stopped) await rb.fail(`stopped at the first failed customer (stopOnFailure): ${summary()}`, 'CustomerFailed');
    };

    await runStage('staging', outcomes);
    const passed = outcomes.filter((o) => o.staging.state === 'succeeded');
    for (const o of outcomes) if (o.staging.state !== 'succeeded') o.production = { state: 'skipped' };
    if (!passed.length) return rb.fail(`no customer passed staging: ${summary()}`, 'CustomerFailed');

    rb.phase('promote');
    const evidence = outcomes.map((o) => `${o.customer}: ${describeOutcome(o.staging)}`).join('\n');
    const gate = await rb.approval('promote', input.promote, `${passed.length} of ${outcomes.length} customer(s) run ${id} on ${stages.staging}: promote ${passed.map((o) => o.customer).join(', ')} to ${stages.production}?`, evidence);
    if (!gate.approved) return rb.fail(`${gate.reason}; production is untouched`, 'Rejected');

    await runStage('production', passed);
    result.ok = outcomes.every((o) => o.production.state === 'succeeded');
    await rb.succeed(`${id}: ${summary()}`);
    return result;
  }, summary);
}
