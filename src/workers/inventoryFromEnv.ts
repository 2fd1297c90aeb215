import { existsSync } from 'node:fs';
import { log } from '../common/log';
import { Inventory, loadInventory } from '../config/inventory';

/** `--inventory`, then OPSFLOW_INVENTORY, then ./inventory.yaml; a worker without one can run no host step. */
export function inventoryFromEnv(explicit?: string): Inventory {
  const file = explicit ?? process.env.OPSFLOW_INVENTORY ?? (existsSync('inventory.yaml') ? 'inventory.yaml' : undefined);
  if (!file) {
    log.warn('no inventory (set OPSFLOW_INVENTORY or pass --inventory): workflows that target hosts will fail with UnknownTarget');
    return Inventory.empty();
  }
  const inventory = loadInventory(file);
  log.info({ file: inventory.file, environments: inventory.environments() }, 'inventory loaded');
  return inventory;
}
