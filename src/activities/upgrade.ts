// Activities for rolling upgrades: what a host runs (OS release, boot id, package versions), a reboot and the
// wait for the host to come back with a new boot id, and service checks polled until they pass.
import { Context } from '@temporalio/activity';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import type { HostShell } from './hostShell';
import { programArgv } from '../common/command';
import type { Inventory, ResolvedHost } from '../config/inventory';
import type { ServiceCheck } from '../schemas/rollingUpgrade';
import { pollChecks, runCheck, type CheckResult } from './checks';
import type { SshPool } from './ssh/pool';
import { runPlain } from './ssh/remoteRun';
import { fillKnown } from '../config/services';
import { HostDidNotReturn, Misconfigured } from '../common/errors';

export interface HostRef {
  environment: string;
  host: string;
}

export interface HostFacts {
  os: string;
  bootId?: string;
  packages: Record<string, string | null>;
}

const sleep = (ms: number) => Context.current().sleep(ms);

export function createUpgradeActivities(deps: { inventory: Inventory; ssh: SshPool }) {
  const { inventory, ssh } = deps;
  const onHost = (ref: HostRef) => <T>(fn: (shell: HostShell) => Promise<T>) => ssh.shell(inventory.connection(ref.environment, ref.host), fn);
  // The operator's commands (reboot, boot id) may name the host's {placeholders}, as fleet commands do.
  const sh = (ref: HostRef, argv: string[], timeoutMs = 60_000) => {
    const vars = inventory.placeholders(ref.environment, ref.host);
    return ssh.shell(inventory.connection(ref.environment, ref.host), (shell) => runPlain(shell, argv.map((a) => fillKnown(a, vars)), timeoutMs));
  };

  async function bootId(ref: HostRef, command: string[]): Promise<string> {
    const res = await sh(ref, command, 30_000);
    if (res.code !== 0 || !res.stdout.trim()) throw new Error(`${ref.host}: boot id command failed (exit ${res.code}): ${res.stderr.trim()}`);
    return res.stdout.trim();
  }

  return {
    /** The hosts in the operator's order, and the HAProxy-balanced services each one serves. */
    /** `waitMs`: the longest HAProxy drain those services declare, the base of the rotation steps' allowance. */
    async upgradePlan(input: { environment: string; order: string[] }): Promise<{ hosts: ResolvedHost[]; rotation: Record<string, string[]>; waitMs: number }> {
      const hosts = inventory.resolve(input.environment, { hosts: input.order });
      for (const h of hosts) await ssh.admit(inventory.connection(input.environment, h.name));
      const rotation = Object.fromEntries(hosts.map((h) => [h.name, inventory.balancedServicesOn(input.environment, h.name)]));
      const drains = Object.values(rotation).flat().map((svc) => msToNumber(inventory.service(input.environment, svc).haproxy?.drainTimeout as Duration));
      return { hosts, rotation, waitMs: Math.max(0, ...drains) };
    },

    async hostFacts(input: HostRef & { packages: string[]; bootIdCommand?: string[] }): Promise<HostFacts> {
      const os = await sh(input, ['cat', '/etc/os-release']);
      if (os.code !== 0) throw new Error(`${input.host}: cannot read /etc/os-release: ${os.stderr.trim()}`);
      const packages: Record<string, string | null> = Object.fromEntries(input.packages.map((p) => [p, null]));
      if (input.packages.length) {
        const res = await sh(input, ['dpkg-query', '-W', '-f=${Package} ${Version}\\n', ...input.packages]);
        for (const line of res.stdout.split('\n')) {
          const [name, version] = line.trim().split(' ');
          if (name && version && name in packages) packages[name] = version;
        }
      }
      return {
        os: /^PRETTY_NAME="?([^"\n]*)"?/m.exec(os.stdout)?.[1] ?? os.stdout.split('\n')[0],
        bootId: input.bootIdCommand ? await bootId(input, input.bootIdCommand) : undefined,
        packages,
      };
    },

    /** Asks the host to reboot. Its connection going away is the expected answer, not an error. */
    async requestReboot(input: HostRef & { command: string[]; sudo: boolean }): Promise<void> {
      // The worker would reboot under its own run, which could then never see the host come back.
      if (inventory.connection(input.environment, input.host).local) throw new Misconfigured(`${input.host} is a local host (the worker's own machine): rollingUpgrade cannot reboot it; leave reboot out`);
      await sh(input, programArgv({ argv: input.command, sudo: input.sudo }), 30_000).catch(() => undefined);
    },

    /** Waits, with backoff, until SSH answers again with a boot id other than the one before the reboot. */
    async waitForBoot(input: HostRef & { previousBootId: string; bootIdCommand: string[]; timeoutMs: number }): Promise<{ bootId: string; waitedMs: number }> {
      const started = Date.now();
      let last = 'no answer yet';
      for (let attempt = 0; Date.now() - started < input.timeoutMs; attempt++) {
        Context.current().heartbeat({ attempt, last });
        try {
          const id = await bootId(input, input.bootIdCommand);
          if (id !== input.previousBootId) return { bootId: id, waitedMs: Date.now() - started };
          last = 'still the boot id from before the reboot';
        } catch (err) {
          last = (err as Error).message;
        }
        await sleep(Math.min(250 * 2 ** attempt, 10_000));
      }
      throw new HostDidNotReturn(`${input.host} did not come back within ${input.timeoutMs / 1000}s of its reboot (${last})`);
    },

    /** Runs the checks until all pass or the time is up; then ChecksFailed names each failing one. */
    async runChecks(input: HostRef & { address: string; checks: ServiceCheck[]; timeoutMs: number }): Promise<CheckResult[]> {
      return pollChecks(input.host, () => Promise.all(input.checks.map((c) => runCheck(c, { name: input.host, address: input.address }, onHost(input)))), input.timeoutMs);
    },
  };
}
