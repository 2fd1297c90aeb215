import { executeChild, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { RecordSet } from '../activities/dns';
import type { StandbyPlan } from '../activities/hotStandby';
import { SA_RELEASE, SA_SERVICE } from '../common/constants';
import { errorOfType, toFailure } from '../common/errors';
import { backupKeyFor } from '../schemas/backupKey';
import { hotStandbyReleaseInput, type HotStandbyReleaseInput } from '../schemas/hotStandbyRelease';
import { parseInput } from '../schemas/validate';
import { backupAndRestore } from './backupAndRestore';
import { blueGreenDeploy } from './blueGreenDeploy';
import { Runbook } from '../runbook';
import { k8sDeploy } from './k8sDeploy';
import { activitiesFor, HEARTBEAT_TIMEOUT, retry } from './activityOptions';
import type { RolesChange } from './systemRoles';

/** Reads and registry changes: a few API calls each, heartbeating, so a dead worker is noticed in seconds. */
const acts = proxyActivities<Activities>({ startToCloseTimeout: '2m', heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: retry() });

/** DNS changes wait for the provider's INSYNC. */
const waiting = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: retry({ initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 10 }),
});

/** The inventory's maintenance and deploy commands get this long. */
const HOST_COMMAND_MS = 30 * 60_000;
const commands = activitiesFor(HOST_COMMAND_MS);

/** A registry change without its id and author, which the run fills in. */
type Unkeyed<T> = T extends unknown ? Omit<T, 'changeId' | 'by'> : never;

export interface HotStandbyReleaseResult {
  kind: 'complex' | 'simple';
  dryRun: boolean;
  release: string;
  production: string;
  standby: string;
  backupKey?: string;
  /** DNS before and after the swap, as the provider answered. */
  dns?: { before: RecordSet; after: RecordSet };
  plan?: string[];
}

/**
 * The GigaDB hot-standby release: two infrastructures swap the roles production and standby. A complex release
 * embargoes production, backs it up, restores it on the standby, deploys there, waits for the business to
 * validate, then swaps every DNS record at once and checks the new production; a rejection, a failed check or a
 * cancellation puts the records and roles back exactly as they were, lifts the embargo, switches maintenance off
 * and resumes the schedules. A simple release deploys to the standby, then to production.
 */
export async function hotStandbyRelease(rawInput: HotStandbyReleaseInput): Promise<HotStandbyReleaseResult> {
  const input = parseInput('hotStandbyRelease', hotStandbyReleaseInput, rawInput);
  const checking = activitiesFor(msToNumber(input.sanityTimeout as Duration));
  const { system, release, kind } = input;
  upsertSearchAttributes([
    { key: SA_SERVICE, value: system },
    { key: SA_RELEASE, value: release },
  ]);
  const rb = new Runbook({ workflow: 'hotStandbyRelease', service: system, release, requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, announce: !input.dryRun, notify: input.notify });
  const { workflowId } = workflowInfo();
  const by = input.requestedBy ?? 'opsflow';
  const change = ({ key, ...c }: Unkeyed<RolesChange> & { key: string }) => acts.changeRoles({ system, change: { ...c, changeId: `${workflowId}:${key}`, by } as RolesChange });

  return rb.run(async () => {
    rb.phase('plan');
    const plan: StandbyPlan = await rb.step('plan', () => acts.standbyPlan({ system, kind, standbyRegion: input.standbyRegion }), { required: true });
    const { production, standby } = plan;
    const backupKey = kind === 'complex' ? (input.backupKey ?? backupKeyFor(workflowInfo().startTime, plan.timezone, 'manual')) : undefined;
    const schedules = input.pauseSchedules ?? plan.schedules;
    const result: HotStandbyReleaseResult = { kind, dryRun: input.dryRun, release, production: production.name, standby: standby.name, backupKey };

    if (input.dryRun) {
      result.plan =
        kind === 'simple'
          ? [`deploy ${release} to the standby ${standby.name} (${standby.region}) and check it`, `deploy ${release} to production ${production.name} (${production.region}) and check it`]
          : [
              `change embargo on production ${production.name} (${production.region})${production.hasMaintenance ? ', maintenance switch on' : ''}`,
              `pause schedules: ${schedules.join(', ') || 'none'}`,
              `back up ${production.database} to S3 as ${backupKey}, restore it on ${standby.database} and verify`,
              `deploy ${release} to the standby ${standby.name} (${standby.region})`,
              `validation gate: ${standby.url ?? standby.name}`,
              `swap DNS (${plan.records.join(', ')}) to ${standby.name}, check it, update the roles registry`,
              `deploy ${release} to the new standby ${production.name}; resume schedules; lift the embargo`,
            ];
      await rb.succeed();
      return result;
    }

    /**
     * A declared step of an infrastructure: a command, run at most once per run and step even across worker
     * crashes, or a child blueGreenDeploy or k8sDeploy whose id extends this run's (the embargo lets it act).
     */
    const runDeclared = async (infrastructure: string, which: 'maintenance.on' | 'maintenance.off' | 'deploy') => {
      const cmd = await acts.infraCommand({ system, infrastructure, which, release });
      if ('child' in cmd) {
        const options = { workflowId: `${workflowId}/${which}-${infrastructure}` };
        const run = { requestedBy: input.requestedBy, failure: input.failure, notify: input.notify };
        if (cmd.child.workflow === 'k8sDeploy') await executeChild(k8sDeploy, { ...options, args: [{ ...cmd.child.input, ...run }] });
        else await executeChild(blueGreenDeploy, { ...options, args: [{ ...cmd.child.input, ...run }] });
        return;
      }
      const [r] = await commands.runOnHosts({ hosts: [cmd.host], command: { argv: cmd.argv, sudo: cmd.sudo }, step: `${which}:${infrastructure}`, concurrency: 1, maxErrors: 0, timeoutMs: HOST_COMMAND_MS, capBytes: 8192 });
      // A refused host key (or any catalogued failure) keeps its type, so the run says what went wrong.
      if (r.state !== 'succeeded') throw toFailure(errorOfType(r.error?.type, `${infrastructure}: ${which} on ${cmd.host.name} ${r.error?.message ?? 'failed'}${r.stderr ? `: ${r.stderr.trim().slice(-500)}` : ''}`));
    };
    const deployAndCheck = async (infrastructure: string) => {
      await rb.step(`deploy ${release} to ${infrastructure}`, () => runDeclared(infrastructure, 'deploy'), { required: true });
      await rb.step(`check ${infrastructure}`, () => checking.infraChecks({ system, infrastructure, release, timeoutMs: msToNumber(input.sanityTimeout as Duration) }), { required: true });
      await rb.step(`record ${release} on ${infrastructure}`, () => change({ kind: 'release', key: `release:${infrastructure}`, infrastructure, release }), { required: true });
    };

    if (kind === 'simple') {
      rb.phase('standby');
      await deployAndCheck(standby.name);
      rb.phase('production');
      await deployAndCheck(production.name);
      await rb.succeed(`${system}: ${release} runs on ${standby.name} and ${production.name}`);
      return result;
    }

    // What the release holds in place while it runs: let go at its end, and undone by the kernel, newest first,
    // when a failure, a rejection or a cancellation ends it early. Each is registered before its change (the
    // change may have happened when a step is cut short) and is harmless when there is nothing to let go.
    const held: { name: string; fn: () => Promise<void>; forget: () => void }[] = [];
    const hold = (name: string, fn: () => Promise<void>) => held.push({ name, fn, forget: rb.compensate(name, fn) });

    rb.phase('embargo');
    hold('lift embargo', async () => {
      await change({ kind: 'lift', key: 'lift', workflowId });
    });
    await rb.step('change embargo', () => change({ kind: 'embargo', key: 'embargo', infrastructure: production.name, workflowId, reason: `${kind} release ${release} of ${system} in progress` }), { required: true });
    if (production.hasMaintenance) {
      hold(`maintenance off on ${production.name}`, () => runDeclared(production.name, 'maintenance.off'));
      await rb.step(`maintenance on ${production.name}`, () => runDeclared(production.name, 'maintenance.on'), { required: true });
    }
    if (schedules.length) {
      hold('resume schedules', async () => {
        await acts.unpauseSchedules({ ids: schedules, note: `resumed by ${workflowId}` });
      });
      await rb.step('pause schedules', () => acts.pauseSchedules({ ids: schedules, note: `paused by ${workflowId} for release ${release}` }), { required: true });
    }

    rb.phase('backup and restore');
    const key = backupKey as string;
    // The children answer to this run's failure policy and audience.
    const run = { system, key, requestedBy: input.requestedBy, failure: input.failure, notify: input.notify };
    await rb.step(
      `back up ${production.name} as ${key}`,
      () =>
        backupAndRestore(rb, {
          names: { backup: `back up ${production.name}'s database as ${key}`, restore: `restore ${key} on ${standby.name} and verify` },
          ids: { backup: `${workflowId}/backup`, restore: `${workflowId}/restore` },
          backup: { ...run, from: production.name, manual: key.length === 12 },
          restore: { ...run, to: standby.name },
        }),
      { required: true },
    );

    rb.phase('deploy to standby');
    await deployAndCheck(standby.name);

    rb.phase('validation');
    const validation = await rb.approval('validation', input.validation, `Validate ${system} release ${release} on the standby ${standby.name} (${standby.region}): ${standby.url ?? 'no URL declared'}`, `Approving swaps the DNS of ${plan.records.join(', ')} to ${standby.name}; rejecting leaves production as it is.`);
    if (!validation.approved) return rb.fail(validation.reason, 'Rejected');

    rb.phase('swap');
    const before = await rb.step('read the DNS records', () => acts.dnsRecords({ system }), { required: true });
    const target = await rb.step(`read ${standby.name}'s addresses`, () => acts.infrastructureRecords({ system, infrastructure: standby.name }), { required: true });
    // Registered before the change: if the swap's outcome is unknown, putting back the old records is still right.
    const forgetDnsUndo = rb.compensate('DNS back to the previous records', async () => {
      await waiting.setDnsRecords({ system, records: before });
    });
    const swapped = await rb.step('swap DNS', () => waiting.setDnsRecords({ system, records: target }), { required: true, onFailure: 'fail' });
    await rb.step(`sanity check ${standby.name}`, () => checking.infraChecks({ system, infrastructure: standby.name, release, timeoutMs: msToNumber(input.sanityTimeout as Duration) }), { required: true, onFailure: 'fail' });
    const forgetRolesUndo = rb.compensate(`roles back: ${production.name} production`, async () => {
      // The swap may or may not have reached the registry before the run was stopped.
      if ((await acts.currentRoles({ system })).production === standby.name) await change({ kind: 'swap', key: 'swap-back', expectProduction: standby.name });
    });
    await rb.step('swap roles', () => change({ kind: 'swap', key: 'swap', expectProduction: production.name }), { required: true });
    // The new production is live and checked: from here on, ending early lets go of what is held, nothing more.
    forgetDnsUndo();
    forgetRolesUndo();
    result.dns = { before, after: swapped.records };
    result.production = standby.name;
    result.standby = production.name;
    rb.announce('phase', `${system}: ${standby.name} is production now, running ${release}`);

    rb.phase('new standby');
    await deployAndCheck(production.name);

    // Done: what was held is let go in the order an undo would, each step forgotten by the saga once it is done.
    for (const h of held.reverse()) {
      await rb.step(h.name, h.fn, { required: true });
      h.forget();
    }
    await rb.succeed(`${system}: release ${release} is production on ${standby.name}; ${production.name} is the standby`);
    return result;
  });
}
