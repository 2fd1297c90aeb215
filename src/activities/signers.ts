// The keys in force for a run's gates, read from the inventory once when the run starts: the result is in the
// run's history, so a later edit of the inventory cannot change who could approve this run.
import type { Inventory } from '../config/inventory';
import type { RunSigners } from '../runbook/signatures/check';
import type { RunIdentity } from '../runbook/signatures/message';

export function createSignerActivities(deps: { inventory: Inventory }) {
  return {
    /** The run's identity comes back with the keys, so replay and `opsflow audit` read it from the history. */
    async gateSigners(input: RunIdentity & { environment?: string }): Promise<RunSigners> {
      const { environment, ...run } = input;
      return { ...deps.inventory.gateSigners(environment), run };
    },
  };
}
