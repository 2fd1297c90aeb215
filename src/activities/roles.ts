// Reading and changing a system's roles registry (the `systemRoles` workflow), and the change-embargo guard that
// every SSH action consults before touching a host of an embargoed infrastructure.
import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { TASK_QUEUE } from '../common/constants';
import type { HostConnection, Inventory } from '../config/inventory';
import { changeRolesUpdate, rolesQuery, rolesWorkflowId, systemRoles, type RolesChange, type RolesState } from '../workflows/systemRoles';
import { Embargoed } from '../common/errors';

export interface RolesDeps {
  inventory: Inventory;
  temporal: Client;
}

/** The registry's state; a registry never started yet holds the inventory's roles. */
export async function readRoles({ inventory, temporal }: RolesDeps, system: string): Promise<RolesState> {
  const cfg = inventory.system(system);
  try {
    return await temporal.workflow.getHandle(rolesWorkflowId(system)).query(rolesQuery);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    return { system, production: cfg.roles.production, standby: cfg.roles.standby, releases: {}, changes: [] };
  }
}

/** The running activity's context; none when called from outside an activity (the CLI, a test). */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Applies one change, starting the registry from the inventory's roles the first time. */
export async function changeRoles({ inventory, temporal }: RolesDeps, system: string, change: RolesChange): Promise<RolesState> {
  const cfg = inventory.system(system);
  try {
    return await temporal.workflow.executeUpdateWithStart(changeRolesUpdate, {
      args: [change],
      startWorkflowOperation: new WithStartWorkflowOperation(systemRoles, {
        workflowId: rolesWorkflowId(system),
        taskQueue: activityContext()?.info.taskQueue ?? TASK_QUEUE,
        args: [{ system, production: cfg.roles.production, standby: cfg.roles.standby }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `roles registry of ${system}`,
      }),
    });
  } catch (err) {
    // A refused change (the validator's reason) is final: retrying cannot make it true.
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      throw ApplicationFailure.create({ message: err.cause.message, type: err.cause.type ?? 'RolesConflict', nonRetryable: true });
    }
    throw err;
  }
}

export function createRolesActivities(deps: RolesDeps) {
  return {
    async currentRoles(input: { system: string }): Promise<RolesState> {
      return readRoles(deps, input.system);
    },
    async changeRoles(input: { system: string; change: RolesChange }): Promise<RolesState> {
      return changeRoles(deps, input.system, input.change);
    },
  };
}

const GUARD_CACHE_MS = 2000;

/**
 * Refuses SSH actions on hosts of an infrastructure under change embargo, unless the embargo's own run (or one of
 * its child runs) is acting. Registry reads are cached for a moment: a fleet run opens many channels at once.
 */
export function embargoGuard(deps: RolesDeps): (host: HostConnection) => Promise<void> {
  const cache = new Map<string, { at: number; state: Promise<RolesState> }>();
  const state = (system: string) => {
    const hit = cache.get(system);
    if (hit && Date.now() - hit.at < GUARD_CACHE_MS) return hit.state;
    const fresh = readRoles(deps, system);
    cache.set(system, { at: Date.now(), state: fresh });
    fresh.catch(() => cache.delete(system));
    return fresh;
  };
  const systemsOf = (environment: string) =>
    deps.inventory.systems().flatMap((system) =>
      Object.entries(deps.inventory.system(system).infrastructures)
        .filter(([, infra]) => infra.environment === environment)
        .map(([infrastructure]) => ({ system, infrastructure })),
    );
  return async (host) => {
    for (const { system, infrastructure } of systemsOf(host.environment)) {
      const { embargo } = await state(system);
      if (!embargo || embargo.infrastructure !== infrastructure) continue;
      const actor = activityContext()?.info.workflowExecution?.workflowId;
      if (actor && (actor === embargo.workflowId || actor.startsWith(`${embargo.workflowId}/`))) continue;
      throw new Embargoed(`${host.environment}/${host.name} belongs to ${system}'s ${infrastructure}, which is under a change embargo held by ${embargo.owner} (run ${embargo.workflowId}, since ${embargo.since}): ${embargo.reason}. Nothing was run; start again once the embargo is lifted.`);
    }
  };
}
