import type { Inventory } from '../config/inventory';
import { createFleetActivities } from './fleet';
import { createReleaseActivities } from './release';
import type { SshPool } from './ssh/pool';

export interface ActivityDeps {
  inventory: Inventory;
  ssh: SshPool;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createFleetActivities(deps), ...createReleaseActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
