// The roles registry: one long-lived workflow per system holds which infrastructure is production and which is
// the hot standby, the release each runs, and the change embargo. It replaces the runbook's wiki table; only
// opsflow's workflows change it (through activities), everyone reads it (query `roles`, `opsflow roles`).
import { ApplicationFailure } from '@temporalio/common';
import { allHandlersFinished, condition, continueAsNew, defineQuery, defineUpdate, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';

export interface Embargo {
  infrastructure: string;
  /** The person who asked for it. */
  owner: string;
  /** The run holding it; its child runs (ids starting with `<workflowId>/`) may act too. */
  workflowId: string;
  reason: string;
  since: string;
}

export interface RoleChange {
  id: string;
  at: string;
  by: string;
  what: string;
}

export interface RolesState {
  system: string;
  production: string;
  standby: string;
  releases: Record<string, string | undefined>;
  embargo?: Embargo;
  /** The latest changes, newest last. */
  changes: RoleChange[];
}

/** Every change names itself: a retried activity re-sending it finds it applied and changes nothing. */
interface ChangeRef {
  changeId: string;
  by: string;
}

export type RolesChange =
  | (ChangeRef & { kind: 'swap'; expectProduction: string })
  | (ChangeRef & { kind: 'release'; infrastructure: string; release: string })
  | (ChangeRef & { kind: 'embargo'; infrastructure: string; workflowId: string; reason: string })
  | (ChangeRef & { kind: 'lift'; workflowId: string });

export const rolesQuery = defineQuery<RolesState>('roles');
export const changeRolesUpdate = defineUpdate<RolesState, [RolesChange]>('changeRoles');

const KEEP_CHANGES = 50;

export interface SystemRolesInput {
  system: string;
  production: string;
  standby: string;
  /** Carried over by continue-as-new. */
  state?: RolesState;
}

export async function systemRoles(input: SystemRolesInput): Promise<void> {
  const state: RolesState = input.state ?? { system: input.system, production: input.production, standby: input.standby, releases: {}, changes: [] };
  const infrastructures = [state.production, state.standby];
  const applied = (id: string) => state.changes.some((c) => c.id === id);

  // The Temporal UI shows this on the registry's page: the runbook's role table, always current.
  const publish = () =>
    setCurrentDetails(
      [
        `**${state.system}**`,
        '',
        '| role | infrastructure | release |',
        '|---|---|---|',
        `| production | ${state.production} | ${state.releases[state.production] ?? '?'} |`,
        `| standby | ${state.standby} | ${state.releases[state.standby] ?? '?'} |`,
        '',
        state.embargo ? `**Change embargo** on ${state.embargo.infrastructure} since ${state.embargo.since}, held by ${state.embargo.owner} (${state.embargo.workflowId}): ${state.embargo.reason}` : 'No change embargo.',
      ].join('\n'),
    );
  publish();
  setHandler(rolesQuery, () => state);
  setHandler(
    changeRolesUpdate,
    (change) => {
      if (applied(change.changeId)) return state;
      const at = new Date().toISOString();
      switch (change.kind) {
        case 'swap':
          [state.production, state.standby] = [state.standby, state.production];
          state.changes.push({ id: change.changeId, at, by: change.by, what: `production is now ${state.production}, standby ${state.standby}` });
          break;
        case 'release':
          state.releases[change.infrastructure] = change.release;
          state.changes.push({ id: change.changeId, at, by: change.by, what: `${change.infrastructure} runs release ${change.release}` });
          break;
        case 'embargo':
          state.embargo = { infrastructure: change.infrastructure, owner: change.by, workflowId: change.workflowId, reason: change.reason, since: at };
          state.changes.push({ id: change.changeId, at, by: change.by, what: `change embargo on ${change.infrastructure}: ${change.reason}` });
          break;
        case 'lift':
          if (state.embargo?.workflowId === change.workflowId) {
            state.changes.push({ id: change.changeId, at, by: change.by, what: `embargo on ${state.embargo.infrastructure} lifted` });
            state.embargo = undefined;
          }
          break;
      }
      state.changes.splice(0, Math.max(0, state.changes.length - KEEP_CHANGES));
      publish();
      return state;
    },
    {
      // Refused changes never reach history: the caller gets the reason, the registry stays as it was.
      validator: (change) => {
        if (applied(change.changeId)) return;
        const refuse = (message: string) => {
          throw ApplicationFailure.create({ message, type: 'RolesConflict', nonRetryable: true });
        };
        if (change.kind === 'swap' && change.expectProduction !== state.production) refuse(`${state.system}: production is ${state.production}, not ${change.expectProduction}: the roles changed under this run`);
        if ((change.kind === 'release' || change.kind === 'embargo') && !infrastructures.includes(change.infrastructure)) refuse(`${state.system} has no infrastructure "${change.infrastructure}" (has ${infrastructures.join(', ')})`);
        if (change.kind === 'embargo' && state.embargo && state.embargo.workflowId !== change.workflowId) {
          const e = state.embargo;
          refuse(`${state.system}: ${e.infrastructure} is already under a change embargo held by ${e.owner} (run ${e.workflowId}, since ${e.since}): ${e.reason}`);
        }
      },
    },
  );

  // Registries live for years: start afresh before the history grows long, once no change is half-handled.
  await condition(() => workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  await continueAsNew<typeof systemRoles>({ ...input, state });
}

export const rolesWorkflowId = (system: string) => `roles:${system}`;
