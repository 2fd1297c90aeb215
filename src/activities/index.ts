import type { WebClient } from '@slack/web-api';
import type { Client } from '@temporalio/client';
import type { Inventory } from '../config/inventory';
import { createBackupActivities } from './backups';
import { createDataSyncActivities } from './dataSync';
import { createDnsActivities } from './dns';
import { createFleetActivities } from './fleet';
import { createHotStandbyActivities } from './hotStandby';
import { createK8sActivities } from './k8s';
import { createMigrationActivities } from './migration';
import { createNotifyActivities } from './notify';
import { createReleaseActivities } from './release';
import { createRcloneActivities } from './rclone';
import { createRolesActivities } from './roles';
import { createScheduleActivities } from './schedules';
import { createSignerActivities } from './signers';
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
  return { ...createFleetActivities(deps), ...createReleaseActivities(deps), ...createNotifyActivities(deps), ...createUpgradeActivities(deps), ...createRolesActivities(deps), ...createDnsActivities(deps), ...createHotStandbyActivities(deps), ...createK8sActivities(deps), ...createDataSyncActivities(deps), ...createRcloneActivities(deps), ...createBackupActivities(deps), ...createScheduleActivities(deps), ...createMigrationActivities(deps), ...createSignerActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
