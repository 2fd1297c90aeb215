// What a hot-standby release needs to know about a system before it acts, the declared commands it runs on an
// infrastructure (maintenance switch, deploy), and the HTTP checks of the business URL.
import type { ResolvedHost } from '../config/inventory';
import { expand } from '../config/services';
import { pollChecks, runCheck, type CheckResult } from './checks';
import { recordNames } from './dns';
import { readRoles, type RolesDeps } from './roles';
import type { RolesState } from '../workflows/systemRoles';
import { InvalidInput, UnknownTarget } from '../common/errors';

export interface InfraView {
  name: string;
  region: string;
  environment?: string;
  url?: string;
  database?: string;
  hasMaintenance: boolean;
  hasDeploy: boolean;
}

export type DeclaredStep =
  | { host: ResolvedHost; argv: string[]; sudo: boolean }
  | { child: { workflow: 'blueGreenDeploy'; input: { environment: string; service: string; release: { id: string; git: { repo: string; ref: string } } | { id: string; tarball: string } } } }
  | { child: { workflow: 'k8sDeploy'; input: { environment: string; service: string; image: string; release: string } } };

export interface StandbyPlan {
  roles: RolesState;
  production: InfraView;
  standby: InfraView;
  timezone: string;
  records: string[];
  schedules: string[];
}

export function createHotStandbyActivities(deps: RolesDeps) {
  const { inventory } = deps;

  const system = (name: string) => inventory.system(name);

  function declared(systemName: string, infrastructure: string, which: 'maintenance.on' | 'maintenance.off' | 'deploy') {
    const infra = system(systemName).infrastructures[infrastructure];
    const spec = which === 'deploy' ? infra?.deploy : which === 'maintenance.on' ? infra?.maintenance?.on : infra?.maintenance?.off;
    if (!infra || !spec || !infra.environment) throw new UnknownTarget(`${systemName}/${infrastructure} declares no ${which}`);
    return { environment: infra.environment, spec };
  }

  return {
    /** Roles from the registry, and everything the release will touch, checked before anything changes. */
    async standbyPlan(input: { system: string; kind: 'complex' | 'simple'; standbyRegion?: string }): Promise<StandbyPlan> {
      const cfg = system(input.system);
      const roles = await readRoles(deps, input.system);
      const view = (name: string): InfraView => {
        const infra = cfg.infrastructures[name];
        return { name, region: inventory.awsAccount(infra.aws).region, environment: infra.environment, url: infra.url, database: infra.database, hasMaintenance: !!infra.maintenance, hasDeploy: !!infra.deploy };
      };
      const production = view(roles.production);
      const standby = view(roles.standby);
      if (input.standbyRegion) {
        const regions = [production.region, standby.region];
        if (!regions.includes(input.standbyRegion)) throw new InvalidInput(`standbyRegion: ${input.system} runs in ${regions.join(' and ')}, not ${input.standbyRegion}`);
        if (input.standbyRegion !== standby.region) throw new InvalidInput(`standbyRegion: ${input.standbyRegion} is ${input.system}'s production (${production.name}); the standby is ${standby.name} in ${standby.region}`);
      }
      const missing: string[] = [];
      for (const infra of [production, standby]) if (!infra.hasDeploy) missing.push(`infrastructures.${infra.name}.deploy`);
      if (input.kind === 'complex') {
        if (!cfg.dns) missing.push('dns');
        if (!cfg.backups) missing.push('backups');
        for (const infra of [production, standby]) if (!infra.database) missing.push(`infrastructures.${infra.name}.database`);
      }
      if (missing.length) throw new UnknownTarget(`a ${input.kind} release of ${input.system} needs ${missing.map((m) => `systems.${input.system}.${m}`).join(', ')} in the inventory`);
      return {
        roles,
        production,
        standby,
        timezone: cfg.timezone,
        records: recordNames(cfg),
        schedules: (['files', 'database'] as const).filter((k) => cfg.schedules[k]).map((k) => `opsflow:${input.system}:${k}`),
      };
    },

    /**
     * What a declared step runs: a command's host and argv (`{release}` becomes the release id, as one
     * argument), or for a deploy through blueGreenDeploy or k8sDeploy, that child run's input.
     */
    async infraCommand(input: { system: string; infrastructure: string; which: 'maintenance.on' | 'maintenance.off' | 'deploy'; release?: string }): Promise<DeclaredStep> {
      const { environment, spec } = declared(input.system, input.infrastructure, input.which);
      const fill = (s: string) => expand(s, { release: input.release ?? '' });
      const id = input.release ?? '';
      if ('blueGreenDeploy' in spec) {
        const { service, git, tarball } = spec.blueGreenDeploy;
        return { child: { workflow: 'blueGreenDeploy', input: { environment, service, release: git ? { id, git: { repo: git.repo, ref: fill(git.ref) } } : { id, tarball: fill(tarball as string) } } } };
      }
      if ('k8sDeploy' in spec) return { child: { workflow: 'k8sDeploy', input: { environment, service: spec.k8sDeploy.service, image: fill(spec.k8sDeploy.image), release: id } } };
      const [host] = inventory.resolve(environment, { hosts: [spec.host] });
      return { host, argv: spec.command.map(fill), sudo: spec.sudo };
    },

    /** The infrastructure's declared HTTP checks, polled until they all pass or the time is up. */
    async infraChecks(input: { system: string; infrastructure: string; release: string; timeoutMs: number }): Promise<CheckResult[]> {
      const infra = system(input.system).infrastructures[input.infrastructure];
      const checks = (infra?.checks ?? []).map((c) => ({ kind: 'http' as const, url: expand(c.url, { release: input.release }), status: c.status, body: c.body && expand(c.body, { release: input.release }) }));
      const noHost = () => Promise.reject(new Error('no host for HTTP checks'));
      return pollChecks(`${input.system}/${input.infrastructure}`, () => Promise.all(checks.map((c) => runCheck(c, { name: input.infrastructure, address: '' }, noHost))), input.timeoutMs);
    },
  };
}
