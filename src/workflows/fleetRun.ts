import { ActivityCancellationType, isCancellation, patched, proxyActivities, proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { HostRunResult } from '../activities/fleet';
import { commandLine, type RemoteCommand } from '../common/command';
import { SA_ENVIRONMENT, SA_SERVICE } from '../common/constants';
import { errorBudget, fleetRunInput, type FleetRunInput } from '../schemas/fleetRun';
import { parseInput } from '../schemas/validate';
import { Runbook } from '../runbook';
import { activitiesFor, HEARTBEAT_TIMEOUT, retry } from './activityOptions';

const resolving = proxyActivities<Activities>({ startToCloseTimeout: '30s', heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: retry() });
// Reading the inventory and admitting the hosts takes milliseconds and changes nothing, so it runs as a local
// activity: no round trip through the server's task queues (docs/performance.md#local-activities). A worker that
// dies in it leaves no heartbeat to miss: the workflow task times out and the next worker reads the inventory again.
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '30s', retry: retry() });
/** Runs recorded before the local activity keep replaying the activity they scheduled. */
const LOCAL_RESOLVE = 'fleetRun-local-resolve';

export interface FleetRunResult {
  ok: boolean;
  dryRun: boolean;
  environment: string;
  command: string;
  summary: { total: number; succeeded: number; failed: number; skipped: number; notStarted: number };
  hosts: (HostRunResult & { skipped?: boolean })[];
  /** Dry run: what would happen, host by host. */
  plan?: { host: string; address: string; command: string }[];
}

/** Runs one command on every host of a target, at a bounded concurrency, stopping past an error budget. */
export async function fleetRun(rawInput: FleetRunInput): Promise<FleetRunResult> {
  const input = parseInput('fleetRun', fleetRunInput, rawInput);
  upsertSearchAttributes([
    { key: SA_ENVIRONMENT, value: input.environment },
    ...(input.service ? [{ key: SA_SERVICE, value: input.service }] : []),
  ]);
  const rb = new Runbook({ workflow: 'fleetRun', environment: input.environment, service: input.service, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, notify: input.notify });
  return rb.run(async () => {
    const command: RemoteCommand = { argv: input.command, sudo: input.sudo, cwd: input.cwd, env: input.env };
    const line = commandLine(command);

    rb.phase('resolve');
    const { resolveTargets } = patched(LOCAL_RESOLVE) ? local : resolving;
    const hosts = await rb.step('resolve targets', () => resolveTargets({ environment: input.environment, target: input.target }), { required: true });
    const budget = errorBudget(input.maxErrors, hosts.length);
    const base = { environment: input.environment, command: line };

    if (input.dryRun) {
      await rb.succeed();
      return {
        ...base,
        ok: true,
        dryRun: true,
        summary: { total: hosts.length, succeeded: 0, failed: 0, skipped: 0, notStarted: hosts.length },
        hosts: [],
        // A local host has no SSH port (0): it is the worker's own machine.
        plan: hosts.map((h) => ({ host: h.name, address: h.port ? `${h.user}@${h.address}:${h.port}` : `${h.user}@worker (local)`, command: line })),
      };
    }

    if (input.approval) {
      rb.phase('approval');
      const outcome = await rb.approval('run', input.approval, `run \`${line}\` on ${hosts.length} host(s) in ${input.environment}`, hosts.map((h) => `${h.name} ${h.address}`).join('\n'));
      if (!outcome.approved) return rb.fail(outcome.reason, 'Rejected');
    }

    rb.phase('run');
    const timeoutMs = msToNumber(input.timeout as Duration);
    const results = new Map<string, FleetRunResult['hosts'][number]>(hosts.map((h) => [h.name, { host: h.name, state: 'not-started', exitCode: null, signal: null, timedOut: false, stdout: '', stderr: '', truncated: false, resumed: false }]));
    let pending = hosts;
    for (let round = 1; pending.length; round++) {
      const waves = Math.ceil(pending.length / input.concurrency);
      // A crashed worker is noticed within the heartbeat timeout; the retry collects what already ran. A cancelled
      // run ends only after the remote processes were told to stop.
      const { runOnHosts } = activitiesFor(timeoutMs * waves, { maximumAttempts: 10 }, { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
      const step = rb.beginStep(`run on ${pending.length} host(s)`, round);
      let batch: HostRunResult[];
      try {
        batch = await runOnHosts({ hosts: pending, command, step: `run#${round}`, concurrency: input.concurrency, maxErrors: budget, timeoutMs, capBytes: hosts.length > 10 ? 2048 : 16384 });
      } catch (err) {
        if (isCancellation(err)) {
          rb.endStep(step, 'failed', 'cancelled');
          throw err;
        }
        const message = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
        batch = pending.map((h) => ({ ...(results.get(h.name) as HostRunResult), state: 'failed', error: { type: 'ActivityFailed', message } }));
      }
      for (const r of batch) results.set(r.host, r);
      for (const r of batch.filter((x) => x.state !== 'not-started')) {
        rb.recordStep({ name: 'run', host: r.host, attempt: round, state: r.state === 'succeeded' ? 'succeeded' : 'failed', startedAt: r.startedAt ?? step.startedAt, endedAt: r.endedAt, error: r.error?.message });
      }
      const failed = batch.filter((r) => r.state === 'failed');
      const unstarted = batch.filter((r) => r.state === 'not-started');
      if (!failed.length && !unstarted.length) {
        rb.endStep(step, 'succeeded');
        break;
      }
      const summary = `${failed.length} host(s) failed${unstarted.length ? `, ${unstarted.length} not started (error budget ${budget} exceeded)` : ''}`;
      rb.endStep(step, 'failed', summary);
      const evidence = failed.map((r) => `${r.host}: ${r.error?.message ?? 'failed'}${r.stderr ? ` — ${r.stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`).join('\n');
      if (input.failure.onFailure === 'fail') return rb.fail(`${summary}:\n${evidence}`, 'HostsFailed');
      const action = await rb.failureGate('run command', `${summary}:\n${evidence}`);
      if (action === 'abort') return rb.fail(`aborted: ${summary}`, 'Aborted');
      if (action === 'skip') {
        for (const r of [...failed, ...unstarted]) results.set(r.host, { ...r, skipped: true });
        break;
      }
      pending = hosts.filter((h) => [...failed, ...unstarted].some((r) => r.host === h.name));
    }

    await rb.succeed();
    const all = [...results.values()];
    const count = (pred: (r: FleetRunResult['hosts'][number]) => boolean) => all.filter(pred).length;
    return {
      ...base,
      ok: count((r) => r.state !== 'succeeded') === 0,
      dryRun: false,
      summary: {
        total: all.length,
        succeeded: count((r) => r.state === 'succeeded'),
        failed: count((r) => r.state === 'failed'),
        skipped: count((r) => !!r.skipped),
        notStarted: count((r) => r.state === 'not-started'),
      },
      hosts: all,
    };
  });
}
