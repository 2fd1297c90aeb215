import { ActivityCancellationType, isCancellation, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { CheckResult } from '../activities/checks';
import type { HostFacts } from '../activities/upgrade';
import { commandLine } from '../common/command';
import { SA_ENVIRONMENT } from '../common/constants';
import { rollingUpgradeInput, type RollingUpgradeInput, type RollingUpgradeParsed } from '../schemas/rollingUpgrade';
import { parseInput } from '../schemas/validate';
import { describeError, Runbook } from '../runbook';
import { activitiesFor, HEARTBEAT_TIMEOUT, retry } from './activityOptions';
import { batches, waitsFor } from './rollout';

/** Plans, facts, a reboot request and checks without a wait: each a few SSH commands. */
export const hostActs = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry(),
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
 * abort leaves every later host untouched. An upgrade has no undo: ending early (abort, cancel) stops the command
 * in flight and puts the host it took out of rotation back in once its checks pass, and says where the line stood.
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
  /**
   * How to undo the upgrade on a host (memcachedPool: put the old pool file back), run when the line ends early.
   * `unchanged` reads the upgrade's output: a host the upgrade says it left as it was needs no undo.
   */
  undo?: { label: (host: string) => string; command: string[]; unchanged: (stdout: string) => boolean };
}

/**
 * The upgrade line itself, for rollingUpgrade and for workflows that are a use of it (memcachedPool): the
 * caller owns the run's Runbook and labels, this owns the order, the gates and the per-host steps.
 */
export function upgradeInOrder(rb: Runbook, input: RollingUpgradeParsed, opts: UpgradeLineOptions = {}): Promise<RollingUpgradeResult> {
  const line = new Line();
  return rb.run(() => runLine(rb, input, opts, line), () => line.describe());
}

/** Where the line stands, for an abort or a cancel and the operator. */
class Line {
  hosts: string[] = [];
  upgraded: string[] = [];
  skipped: string[] = [];
  readonly current = new Set<string>();

  /** `failed`: the host whose failure ends the line; otherwise the hosts in flight were interrupted. */
  describe(failed?: string): string {
    const done = new Set([...this.upgraded, ...this.skipped, ...this.current]);
    const untouched = this.hosts.filter((h) => !done.has(h));
    const stopped = failed ? `failed: ${failed}` : `interrupted: ${[...this.current].join(', ') || 'none'}`;
    return `upgraded: ${this.upgraded.join(', ') || 'none'}; skipped: ${this.skipped.join(', ') || 'none'}; ${stopped}; untouched: ${untouched.join(', ') || 'none'}`;
  }
}

/** {node} and {address} name the host, as in checks; other braces (a script's ${VAR}) stay as they are. */
const forHost = (argv: string[], host: { name: string; address: string }) => argv.map((a) => a.split('{node}').join(host.name).split('{address}').join(host.address));

async function runLine(rb: Runbook, input: RollingUpgradeParsed, opts: UpgradeLineOptions, line: Line): Promise<RollingUpgradeResult> {
  const { environment } = input;
  const upgradeLine = opts.upgradeLabel ?? commandLine({ argv: input.upgrade.command, sudo: input.upgrade.sudo });
  // The declared durations bound their steps; no shared allowance cuts them short.
  const upgradeMs = msToNumber(input.upgrade.timeout as Duration);
  // A cancelled run waits for the killed command to be gone before it checks the host and puts it back.
  const upgrading = activitiesFor(upgradeMs, {}, { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
  const checking = activitiesFor(msToNumber(input.checksTimeout as Duration));
  const booting = input.reboot && activitiesFor(msToNumber(input.reboot.timeout as Duration));

  rb.phase('resolve');
  const plan = await rb.step('resolve hosts', () => hostActs.upgradePlan({ environment, order: input.order }), { required: true });
  const rotating = waitsFor(plan.waitMs);
  line.hosts = plan.hosts.map((h) => h.name);
  const result: RollingUpgradeResult = { ok: false, dryRun: input.dryRun, upgraded: line.upgraded, skipped: line.skipped, notes: [] };
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

  const checksMs = msToNumber(input.checksTimeout as Duration);
  const postChecks = (host: (typeof plan.hosts)[number]) => checking.runChecks({ environment, host: host.name, address: host.address, checks: input.checks, timeoutMs: checksMs });
  /** Undo steps registered per host, once whatever the attempt: back in rotation is forgotten once done. */
  const backInRotation = new Map<string, () => void>();
  const undoRegistered = new Set<string>();
  /** Hosts whose upgrade reported that it left them as they were. */
  const unchanged = new Set<string>();

  /** A guarded run of the command on the host (at most once per step), failing with its error and stderr. */
  const runOn = async (host: (typeof plan.hosts)[number], argv: string[], step: string, what: string): Promise<string> => {
    const [r] = await upgrading.runOnHosts({ hosts: [host], command: { argv: forHost(argv, host), sudo: input.upgrade.sudo }, step, concurrency: 1, maxErrors: 0, timeoutMs: upgradeMs, capBytes: 8192 });
    if (r.state !== 'succeeded') throw new Error(`${host.name}: ${what} ${r.error?.message ?? 'failed'}${r.stderr ? `: ${r.stderr.trim().slice(-500)}` : ''}`);
    return r.stdout;
  };

  const upgradeHost = async (host: (typeof plan.hosts)[number], attempt: number): Promise<void> => {
    const ref = { environment, host: host.name };
    const services = plan.rotation[host.name];
    const bootIdCommand = input.reboot?.bootIdCommand;
    const before: HostFacts = await rb.track('pre-checks', async () => {
      const facts = await hostActs.hostFacts({ ...ref, packages: input.packages, bootIdCommand });
      if (input.expectOs && !facts.os.includes(input.expectOs)) throw new Error(`${host.name} runs "${facts.os}", not "${input.expectOs}"`);
      if (input.checks.length) await hostActs.runChecks({ ...ref, address: host.address, checks: input.checks, timeoutMs: 0 });
      return facts;
    }, host.name);
    if (services.length && !backInRotation.has(host.name)) {
      // Registered before the host leaves rotation: a host taken out never stays out unsaid.
      backInRotation.set(host.name, rb.compensate(`put ${host.name} back in ${services.join(', ')} once its checks pass`, async () => {
        if (input.checks.length) await rb.track('checks before rotation', () => postChecks(host), host.name);
        for (const service of services) await rb.track(`back in ${service}`, () => rotating.setRotation({ environment, service, node: host.name, inRotation: true }), host.name);
      }));
    }
    for (const service of services) await rb.track(`out of ${service}`, () => rotating.setRotation({ environment, service, node: host.name, inRotation: false }), host.name);
    const undo = opts.undo;
    if (undo && !undoRegistered.has(host.name)) {
      undoRegistered.add(host.name);
      rb.compensate(undo.label(host.name), async () => {
        if (unchanged.has(host.name)) return;
        await runOn(host, undo.command, `undo:${host.name}`, 'undo');
      });
    }
    await rb.track('upgrade', async () => {
      // The guarded run: a retry after a crash collects the first attempt instead of upgrading twice.
      const stdout = await runOn(host, input.upgrade.command, `upgrade:${host.name}#${attempt}`, 'upgrade');
      if (undo?.unchanged(stdout)) unchanged.add(host.name);
    }, host.name);
    let rebooted: boolean | undefined;
    if (input.reboot && booting && before.bootId) {
      const { command, sudo, timeout } = input.reboot;
      await rb.track('reboot', () => hostActs.requestReboot({ ...ref, command, sudo }), host.name);
      await rb.track('wait for boot', () => booting.waitForBoot({ ...ref, previousBootId: before.bootId as string, bootIdCommand: input.reboot?.bootIdCommand ?? [], timeoutMs: msToNumber(timeout as Duration) }), host.name);
      rebooted = true;
    }
    const checks = input.checks.length ? await rb.track('post-checks', () => postChecks(host), host.name) : [];
    const after = await hostActs.hostFacts({ ...ref, packages: input.packages });
    for (const service of services) await rb.track(`back in ${service}`, () => rotating.setRotation({ environment, service, node: host.name, inRotation: true }), host.name);
    backInRotation.get(host.name)?.();
    result.notes.push({
      host: host.name,
      osBefore: before.os,
      osAfter: after.os,
      rebooted,
      packages: Object.fromEntries(input.packages.map((p) => [p, { before: before.packages[p] ?? null, after: after.packages[p] ?? null }])),
      checks,
    });
  };

  const runHost = async (host: (typeof plan.hosts)[number]): Promise<void> => {
    line.current.add(host.name);
    for (let attempt = 1; ; attempt++) {
      try {
        await rb.track(`upgrade ${host.name}`, () => upgradeHost(host, attempt), host.name);
        line.current.delete(host.name);
        line.upgraded.push(host.name);
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const { message } = describeError(err);
        if (input.failure.onFailure === 'fail') return rb.fail(`${message}; ${line.describe(host.name)}`, 'HostFailed');
        const action = await rb.failureGate(`upgrade ${host.name}`, `${message}\n${line.describe(host.name)}`);
        if (action === 'abort') return rb.fail(`aborted at ${host.name}: ${message}; ${line.describe(host.name)}`, 'Aborted');
        if (action === 'skip') {
          line.current.delete(host.name);
          line.skipped.push(host.name);
          return;
        }
      }
    }
  };

  rb.phase('upgrade');
  for (const wave of batches(plan.hosts, input.waveSize)) await Promise.all(wave.map(runHost));
  // The line is done: a late cancel undoes nothing.
  rb.commit();
  await rb.succeed(`upgraded ${result.upgraded.join(', ')}${result.skipped.length ? `; skipped ${result.skipped.join(', ')}` : ''}`);
  return { ...result, ok: result.skipped.length === 0 };
}
