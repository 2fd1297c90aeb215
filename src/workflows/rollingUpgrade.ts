import { isCancellation, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { CheckResult } from '../activities/checks';
import type { HostFacts } from '../activities/upgrade';
import { commandLine } from '../common/command';
import { SA_ENVIRONMENT } from '../common/constants';
import { rollingUpgradeInput, type RollingUpgradeInput, type RollingUpgradeParsed } from '../schemas/rollingUpgrade';
import { parseInput } from '../schemas/validate';
import { describeError, Runbook } from './gates';
import { batches, quick, waiting } from './rollout';

const nonRetryableErrorTypes = ['InvalidInput', 'UnknownTarget', 'HostDidNotReturn', 'ChecksFailed', 'HostKeyRejected', 'SshAuthFailed', 'SshConfigError'];

export const hostActs = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 5, nonRetryableErrorTypes },
});

export interface HostNote {
  host: string;
  osBefore: string;
  osAfter?: string;
  rebooted?: boolean;
  packages: Record<string, { before: string | null; after: string | null }>;
  checks: CheckResult[];
}

export interface RollingUpgradeResult {
  ok: boolean;
  dryRun: boolean;
  upgraded: string[];
  skipped: string[];
  notes: HostNote[];
  plan?: { host: string; steps: string[] }[];
}

/**
 * Upgrades hosts one at a time (or in waves) in the operator's order, after a thumbs-up, and stops the line at
 * the first host that does not come back healthy: its failure gate decides between retry, skip and abort, and
 * abort leaves every later host untouched.
 */
export async function rollingUpgrade(rawInput: RollingUpgradeInput): Promise<RollingUpgradeResult> {
  const input = parseInput('rollingUpgrade', rollingUpgradeInput, rawInput);
  upsertSearchAttributes([{ key: SA_ENVIRONMENT, value: input.environment }]);
  const rb = new Runbook({ workflow: 'rollingUpgrade', environment: input.environment, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, announce: !input.dryRun, notify: input.notify });
  return upgradeInOrder(rb, input);
}

export interface UpgradeLineOptions {
  /** Runs after the hosts are resolved and before the approval gate; what it returns is shown at the gate. */
  before?: () => Promise<string>;
  /** Dry runs: what `before` would do. */
  beforePlan?: string;
  /** What the upgrade does, for the gate and the plan, when the command itself says it poorly. */
  upgradeLabel?: string;
}

/**
 * The upgrade line itself, for rollingUpgrade and for workflows that are a use of it (memcachedPool): the
 * caller owns the run's Runbook and labels, this owns the order, the gates and the per-host steps.
 */
export async function upgradeInOrder(rb: Runbook, input: RollingUpgradeParsed, opts: UpgradeLineOptions = {}): Promise<RollingUpgradeResult> {
  const { environment } = input;
  const upgradeLine = opts.upgradeLabel ?? commandLine({ argv: input.upgrade.command, sudo: input.upgrade.sudo });

  rb.phase('resolve');
  const plan = await rb.step('resolve hosts', () => hostActs.upgradePlan({ environment, order: input.order }), { required: true });
  const result: RollingUpgradeResult = { ok: false, dryRun: input.dryRun, upgraded: [], skipped: [], notes: [] };
  if (input.dryRun) {
    await rb.succeed();
    return {
      ...result,
      ok: true,
      plan: plan.hosts.map((h) => ({
        host: h.name,
        steps: [
          ...(opts.beforePlan ? [opts.beforePlan] : []),
          'pre-checks: SSH, /etc/os-release' + (input.expectOs ? ` contains "${input.expectOs}"` : '') + (input.checks.length ? `, ${input.checks.length} service check(s)` : ''),
          ...plan.rotation[h.name].map((svc) => `HAProxy: take ${h.name} out of ${svc}`),
          `upgrade: ${upgradeLine}`,
          ...(input.reboot ? [`reboot: ${commandLine({ argv: input.reboot.command, sudo: input.reboot.sudo })}, then wait for a new boot id (up to ${input.reboot.timeout})`] : []),
          'post-checks',
          ...plan.rotation[h.name].map((svc) => `HAProxy: put ${h.name} back in ${svc}`),
        ],
      })),
    };
  }

  const evidence = opts.before ? `${await opts.before()}\n\n` : '';
  rb.phase('approval');
  const approval = await rb.approval('upgrade', input.approval, `upgrade ${plan.hosts.length} host(s) in ${environment}, in this order: ${input.order.join(', ')}: \`${upgradeLine}\``, `${evidence}Rollback plan:\n${input.rollbackPlan}`);
  if (!approval.approved) return rb.fail(approval.reason, 'Rejected');

  const upgradeHost = async (host: (typeof plan.hosts)[number], attempt: number): Promise<void> => {
    const ref = { environment, host: host.name };
    const bootIdCommand = input.reboot?.bootIdCommand;
    const before: HostFacts = await rb.track('pre-checks', async () => {
      const facts = await hostActs.hostFacts({ ...ref, packages: input.packages, bootIdCommand });
      if (input.expectOs && !facts.os.includes(input.expectOs)) throw new Error(`${host.name} runs "${facts.os}", not "${input.expectOs}"`);
      if (input.checks.length) await hostActs.runChecks({ ...ref, address: host.address, checks: input.checks, timeoutMs: 0 });
      return facts;
    }, host.name);
    for (const service of plan.rotation[host.name]) await rb.track(`out of ${service}`, () => waiting.setRotation({ environment, service, node: host.name, inRotation: false }), host.name);
    await rb.track('upgrade', async () => {
      // The guarded run: a retry after a crash collects the first attempt instead of upgrading twice.
      // {node} and {address} name the host, as in checks; other braces (a script's ${VAR}) stay as they are.
      const argv = input.upgrade.command.map((a) => a.split('{node}').join(host.name).split('{address}').join(host.address));
      const [r] = await quick.runOnHosts({ hosts: [host], command: { argv, sudo: input.upgrade.sudo }, step: `upgrade:${host.name}#${attempt}`, concurrency: 1, maxErrors: 0, timeoutMs: msToNumber(input.upgrade.timeout as Duration), capBytes: 8192 });
      if (r.state !== 'succeeded') throw new Error(`${host.name}: upgrade ${r.error?.message ?? 'failed'}${r.stderr ? `: ${r.stderr.trim().slice(-500)}` : ''}`);
    }, host.name);
    let rebooted: boolean | undefined;
    if (input.reboot && before.bootId) {
      const { command, sudo, timeout } = input.reboot;
      await rb.track('reboot', () => hostActs.requestReboot({ ...ref, command, sudo }), host.name);
      await rb.track('wait for boot', () => hostActs.waitForBoot({ ...ref, previousBootId: before.bootId as string, bootIdCommand: input.reboot?.bootIdCommand ?? [], timeoutMs: msToNumber(timeout as Duration) }), host.name);
      rebooted = true;
    }
    const checks = input.checks.length ? await rb.track('post-checks', () => hostActs.runChecks({ ...ref, address: host.address, checks: input.checks, timeoutMs: msToNumber(input.checksTimeout as Duration) }), host.name) : [];
    const after = await hostActs.hostFacts({ ...ref, packages: input.packages });
    for (const service of plan.rotation[host.name]) await rb.track(`back in ${service}`, () => waiting.setRotation({ environment, service, node: host.name, inRotation: true }), host.name);
    result.notes.push({
      host: host.name,
      osBefore: before.os,
      osAfter: after.os,
      rebooted,
      packages: Object.fromEntries(input.packages.map((p) => [p, { before: before.packages[p] ?? null, after: after.packages[p] ?? null }])),
      checks,
    });
  };

  /** Where the line stands, for the abort message and the operator. */
  const line = (failed: string) => {
    const done = new Set([...result.upgraded, ...result.skipped, failed]);
    const untouched = plan.hosts.map((h) => h.name).filter((h) => !done.has(h));
    return `upgraded: ${result.upgraded.join(', ') || 'none'}; skipped: ${result.skipped.join(', ') || 'none'}; failed: ${failed}; untouched: ${untouched.join(', ') || 'none'}`;
  };
  const runHost = async (host: (typeof plan.hosts)[number]): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await rb.track(`upgrade ${host.name}`, () => upgradeHost(host, attempt), host.name);
        result.upgraded.push(host.name);
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const { message } = describeError(err);
        if (input.failure.onFailure === 'fail') return rb.fail(`${message}; ${line(host.name)}`, 'HostFailed');
        const action = await rb.failureGate(`upgrade ${host.name}`, `${message}\n${line(host.name)}`);
        if (action === 'abort') return rb.fail(`aborted at ${host.name}: ${message}; ${line(host.name)}`, 'Aborted');
        if (action === 'skip') {
          result.skipped.push(host.name);
          return;
        }
      }
    }
  };

  rb.phase('upgrade');
  for (const wave of batches(plan.hosts, input.waveSize)) await Promise.all(wave.map(runHost));
  await rb.succeed(`upgraded ${result.upgraded.join(', ')}${result.skipped.length ? `; skipped ${result.skipped.join(', ')}` : ''}`);
  return { ...result, ok: result.skipped.length === 0 };
}
