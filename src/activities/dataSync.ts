// Which way data flows between a system's two infrastructures, and the refusals that keep production safe. The
// direction comes from the roles registry (production → standby); every step that overwrites data asks the
// registry again right before it acts, so a role swap during a long sync cannot turn it against production.
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Inventory } from '../config/inventory';
import type { DatabaseConfig, Infrastructure, RunOn, SystemConfig } from '../config/systems';
import type { Store } from '../schemas/dataSync';
import { readRoles } from './roles';
import { DestinationIsProduction, Embargoed, Misconfigured, UnknownTarget } from '../common/errors';

export interface DataDeps {
  inventory: Inventory;
  temporal: Client;
}

export interface DatabaseEnd {
  infrastructure: string;
  /** The inventory's name for the database. */
  database: string;
  /** Its name on the server. */
  name: string;
  server: string;
  runsOn: string;
}

export interface SyncPlan {
  system: string;
  production: string;
  standby: string;
  from: string;
  to: string;
  /** The receiving infrastructure's inventory environment, for the run's search attributes. */
  environment?: string;
  timezone: string;
  files?: { from: string; to: string; runsOn: string };
  database?: { from: DatabaseEnd; to: DatabaseEnd; location: string };
}

export function infrastructureOf(sys: SystemConfig, system: string, name: string): Infrastructure {
  const infra = sys.infrastructures[name];
  if (!infra) throw new UnknownTarget(`${system} has no infrastructure "${name}" (it has: ${Object.keys(sys.infrastructures).join(', ')})`);
  return infra;
}

/** Where rclone runs when `infra` receives the files: its `rcloneOn` host, else the worker. */
export function rcloneWhere(infra: Infrastructure): RunOn | undefined {
  return infra.rcloneOn && infra.environment ? { environment: infra.environment, host: infra.rcloneOn } : undefined;
}

export const whereName = (where: RunOn | undefined) => (where ? `${where.environment}/${where.host}` : 'worker');

/** A backup location as people read it. */
export function backupLocation(sys: SystemConfig, system: string): string {
  if (!sys.backups) throw new Misconfigured(`${system} has no backups section in the inventory (account, bucket, prefix): database sync needs one`);
  return `s3://${sys.backups.bucket}/${backupPrefix(sys, system)}`;
}

/** Every object of a system's backups lives under this prefix. */
export function backupPrefix(sys: SystemConfig, system: string): string {
  const prefix = sys.backups?.prefix ?? '';
  return `${prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix}${system}/`;
}

function databaseEnd(inventory: Inventory, sys: SystemConfig, system: string, infrastructure: string): { end: DatabaseEnd; config: DatabaseConfig } {
  const infra = infrastructureOf(sys, system, infrastructure);
  if (!infra.database) throw new Misconfigured(`${system}'s ${infrastructure} names no database in the inventory`);
  const config = inventory.database(infra.database);
  return {
    config,
    end: { infrastructure, database: infra.database, name: config.database, server: `${config.host}:${config.port}`, runsOn: whereName(config.runOn) },
  };
}

/**
 * Refuses, non-retryably, to write into `infrastructure` unless the registry says it is the standby now, and while
 * a change embargo holds the system (a release is preparing the standby) unless this run is the embargo's own or
 * one of its children.
 */
export async function assertReceiver(deps: DataDeps, system: string, infrastructure: string): Promise<{ production: string; standby: string }> {
  const roles = await readRoles(deps, system);
  if (infrastructure === roles.production) {
    throw new DestinationIsProduction(`refused: ${infrastructure} is ${system}'s production (roles registry); data is only ever written to the standby, ${roles.standby}`);
  }
  if (infrastructure !== roles.standby) throw new Misconfigured(`refused: ${infrastructure} is not ${system}'s standby (${roles.standby}, per the roles registry)`);
  const embargo = roles.embargo;
  const actor = Context.current().info.workflowExecution?.workflowId ?? '';
  if (embargo && actor !== embargo.workflowId && !actor.startsWith(`${embargo.workflowId}/`)) {
    throw new Embargoed(`refused: ${system} is under a change embargo held by ${embargo.owner} (run ${embargo.workflowId}, since ${embargo.since}): ${embargo.reason}; nothing was written to ${infrastructure}. Start again once the embargo is lifted.`);
  }
  return roles;
}

export function createDataSyncActivities(deps: DataDeps) {
  const { inventory } = deps;
  return {
    /**
     * The sync's direction and both ends of every store, as the run will use them (recorded in its history).
     * Refuses a destination that is production, and ends that would overwrite the source.
     */
    async planDataSync(input: { system: string; stores: Store[]; to?: string }): Promise<SyncPlan> {
      const sys = inventory.system(input.system);
      const { production, standby } = await readRoles(deps, input.system);
      for (const infra of [production, standby]) infrastructureOf(sys, input.system, infra);
      if (input.to !== undefined) infrastructureOf(sys, input.system, input.to);
      await assertReceiver(deps, input.system, input.to ?? standby);
      const from = infrastructureOf(sys, input.system, production);
      const to = infrastructureOf(sys, input.system, standby);
      const plan: SyncPlan = { system: input.system, production, standby, from: production, to: standby, environment: to.environment, timezone: sys.timezone };
      if (input.stores.includes('files')) {
        if (!from.files || !to.files) throw new Misconfigured(`${input.system}: files sync needs a files path on both infrastructures (${[!from.files && production, !to.files && standby].filter(Boolean).join(', ')} has none)`);
        // Both paths are read where rclone runs, so the same path is the same store.
        if (from.files.replace(/\/+$/, '') === to.files.replace(/\/+$/, '')) throw new Misconfigured(`${input.system}: ${production} and ${standby} name the same file store (${from.files}): a sync would overwrite production with itself`);
        plan.files = { from: from.files, to: to.files, runsOn: whereName(rcloneWhere(to)) };
      }
      if (input.stores.includes('database')) {
        const location = backupLocation(sys, input.system);
        const src = databaseEnd(inventory, sys, input.system, production);
        const dst = databaseEnd(inventory, sys, input.system, standby);
        const same = src.end.database === dst.end.database || (src.config.host === dst.config.host && src.config.port === dst.config.port && src.config.database === dst.config.database && whereName(src.config.runOn) === whereName(dst.config.runOn));
        if (same) throw new Misconfigured(`${input.system}: ${production} and ${standby} name the same database (${src.end.name} on ${src.end.server}): a restore would overwrite production`);
        plan.database = { from: src.end, to: dst.end, location };
      }
      return plan;
    },

    /** The database a backup dumps: `from`, or production. */
    async planBackup(input: { system: string; from?: string }): Promise<{ database: DatabaseEnd; timezone: string; location: string; environment?: string }> {
      const sys = inventory.system(input.system);
      const infrastructure = input.from ?? (await readRoles(deps, input.system)).production;
      const { end } = databaseEnd(inventory, sys, input.system, infrastructure);
      return { database: end, timezone: sys.timezone, location: backupLocation(sys, input.system), environment: infrastructureOf(sys, input.system, infrastructure).environment };
    },

    /** The database a restore replaces: `to`, or the standby; never production. */
    async planRestore(input: { system: string; to?: string }): Promise<{ database: DatabaseEnd; location: string; environment?: string }> {
      const sys = inventory.system(input.system);
      const infrastructure = input.to ?? (await readRoles(deps, input.system)).standby;
      infrastructureOf(sys, input.system, infrastructure);
      await assertReceiver(deps, input.system, infrastructure);
      const { end } = databaseEnd(inventory, sys, input.system, infrastructure);
      return { database: end, location: backupLocation(sys, input.system), environment: infrastructureOf(sys, input.system, infrastructure).environment };
    },
  };
}
