import type { Inventory } from '../config/inventory';
import { createFleetActivities } from './fleet';
import { createNotifyActivities } from './notify';
import { createReleaseActivities } from './release';
import type { SshPool } from './ssh/pool';

export interface ActivityDeps {
  inventory: Inventory;
  ssh: SshPool;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createFleetActivities(deps), ...createReleaseActivities(deps), ...createNotifyActivities() };
}

export type Activities = ReturnType<typeof createActivities>;
