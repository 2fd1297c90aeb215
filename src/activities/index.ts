import type { WebClient } from '@slack/web-api';
import type { Client } from '@temporalio/client';
import type { Inventory } from '../config/inventory';
import { createFleetActivities } from './fleet';
import { createNotifyActivities } from './notify';
import { createReleaseActivities } from './release';
import { createRolesActivities } from './roles';
import { createUpgradeActivities } from './upgrade';
import type { SshPool } from './ssh/pool';

export interface ActivityDeps {
  inventory: Inventory;
  ssh: SshPool;
  /** Absent: no Slack, nothing posts. */
  slack?: WebClient;
  temporal: Client;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createFleetActivities(deps), ...createReleaseActivities(deps), ...createNotifyActivities(deps), ...createUpgradeActivities(deps), ...createRolesActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
