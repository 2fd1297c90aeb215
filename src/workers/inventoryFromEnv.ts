// Which inventory a process uses (docs/inventory.md, "Which inventory"): `--inventory`, then OPSFLOW_INVENTORY, then
// ./inventory.yaml, then sandbox/inventory.yaml (written by `opsflow sandbox up`), else the built-in one. A worker
// chooses again each time it reads the inventory, so a file written or edited after it started (the sandbox's)
// is used without a restart; the CLI chooses once.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { log } from '../common/log';
import { inventoryFileMissing } from '../common/errors';
import { BUILT_IN_ENVIRONMENT, BUILT_IN_HOST, Inventory, loadInventory } from '../config/inventory';

/** Where `opsflow sandbox up` writes its inventory, relative to the working directory. */
export const SANDBOX_INVENTORY = 'sandbox/inventory.yaml';

export interface InventoryChoice {
  /** Absent: the built-in inventory. */
  file?: string;
  /** What chose it: `--inventory`, `OPSFLOW_INVENTORY`, `./inventory.yaml`, `sandbox/inventory.yaml` or `built-in`. */
  why: string;
}

export function chooseInventory(explicit?: string): InventoryChoice {
  if (explicit) return { file: path.resolve(explicit), why: '--inventory' };
  if (process.env.OPSFLOW_INVENTORY) return { file: path.resolve(process.env.OPSFLOW_INVENTORY), why: 'OPSFLOW_INVENTORY' };
  for (const candidate of ['inventory.yaml', SANDBOX_INVENTORY]) if (existsSync(candidate)) return { file: path.resolve(candidate), why: candidate };
  return { why: 'built-in' };
}

function load(choice: InventoryChoice): Inventory {
  if (!choice.file) return Inventory.builtIn();
  // A file the person named must exist; the ones found by looking were there a moment ago.
  if (!existsSync(choice.file)) throw inventoryFileMissing(choice.file, choice.why);
  return loadInventory(choice.file);
}

/** The inventory, chosen and read once: the CLI's. */
export function inventoryFromEnv(explicit?: string): Inventory {
  const choice = chooseInventory(explicit);
  const inventory = load(choice);
  log.debug({ file: inventory.file ?? 'built-in', by: choice.why, environments: inventory.environments() }, 'inventory loaded');
  return inventory;
}

/**
 * The worker's inventory: chosen and read now (a bad file stops the worker), then chosen again and reread whenever
 * the choice or the file's modification time changes. A file that became invalid fails the activities that read
 * it with its problems, until it is fixed; it never silently keeps the old hosts.
 */
export function watchedInventory(explicit?: string): Inventory {
  const stampOf = (choice: InventoryChoice) => {
    if (!choice.file) return 'built-in';
    try {
      const st = statSync(choice.file);
      return `${choice.file}\0${st.mtimeMs}\0${st.size}`;
    } catch {
      return `${choice.file}\0missing`;
    }
  };
  const read = (choice: InventoryChoice) => {
    const inventory = load(choice);
    log.info({ file: inventory.file ?? 'built-in', by: choice.why, environments: inventory.environments() }, 'inventory loaded');
    return inventory;
  };
  const first = chooseInventory(explicit);
  let current: { stamp: string; inventory?: Inventory; error?: Error } = { stamp: stampOf(first), inventory: read(first) };
  return Inventory.following(() => {
    const choice = chooseInventory(explicit);
    const stamp = stampOf(choice);
    if (stamp !== current.stamp) {
      try {
        current = { stamp, inventory: read(choice) };
      } catch (err) {
        log.error({ file: choice.file, err: (err as Error).message }, 'inventory not reloaded');
        current = { stamp, error: err as Error };
      }
    }
    if (current.error) throw current.error;
    return current.inventory as Inventory;
  });
}

/** One line for `npm start`'s banner: which inventory, and why. */
export function describeInventory(inventory: Inventory, explicit?: string): string {
  if (!inventory.file) return `built-in: environment "${BUILT_IN_ENVIRONMENT}", host "${BUILT_IN_HOST}" (this machine); ./inventory.yaml or ${SANDBOX_INVENTORY} replaces it once written`;
  return `${inventory.file} (${chooseInventory(explicit).why}; reread when it changes)`;
}
