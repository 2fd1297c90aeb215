// The bench's own sshd fleet and the inventories each tool reads for it. It is separate from the test suite's
// fleet (/tmp/opsflow-test-fleet on port 2222), which may be in use while the bench runs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { startFleet, stopFleet, type Fleet, type FleetHost } from '../../test/support/fleet';

// OPSFLOW_BENCH_FLEET_DIR / _PORT: a fleet of its own for a bench run beside another one.
export const BENCH_FLEET_DIR = process.env.OPSFLOW_BENCH_FLEET_DIR ?? '/tmp/opsflow-bench-fleet';
export const BENCH_FLEET_PORT = Number(process.env.OPSFLOW_BENCH_FLEET_PORT ?? 2200);
/** The largest fan-out; every part uses hosts of this one fleet so none restarts it with another size. */
export const BENCH_FLEET_SIZE = 200;
export const ENVIRONMENT = 'bench';

let fleet: Fleet | undefined;

/** Starts the fleet once per bench run (idempotent and cheap when it is already up). */
export function benchFleet(): Fleet {
  fleet ??= startFleet({ count: BENCH_FLEET_SIZE, dir: BENCH_FLEET_DIR, port: BENCH_FLEET_PORT });
  return fleet;
}

export function stopBenchFleet(): void {
  if (fleet) stopFleet(BENCH_FLEET_DIR);
  fleet = undefined;
}

/** The first `count` hosts: h1..hN. */
export function firstHosts(count: number): FleetHost[] {
  const hosts = benchFleet().hosts.slice(0, count);
  if (hosts.length < count) throw new Error(`the bench fleet has ${hosts.length} hosts, ${count} wanted`);
  return hosts;
}

export const groupOf = (count: number) => `first${count}`;

const scratch: string[] = [];

/** A temporary directory for inventories, bundles and Ansible's files; all removed by removeScratch(). */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `opsflow-bench-${prefix}-`));
  scratch.push(dir);
  return dir;
}

export function removeScratch(): void {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface OpsInventoryOptions {
  /** Groups `first<N>` (h1..hN) for each size. */
  groupSizes?: number[];
  /** Extra fields per host (vars for services). */
  hosts?: Record<string, Record<string, unknown>>;
  services?: Record<string, unknown>;
}

/** An opsflow inventory of the whole fleet, environment `bench`. */
export function writeOpsInventory(opts: OpsInventoryOptions = {}): string {
  const f = benchFleet();
  const file = path.join(scratchDir('inv'), 'inventory.yaml');
  const groups = Object.fromEntries((opts.groupSizes ?? []).map((n) => [groupOf(n), firstHosts(n).map((h) => h.name)]));
  writeFileSync(
    file,
    stringify({
      knownHosts: f.knownHostsFile,
      defaults: { user: f.user, port: BENCH_FLEET_PORT, identityFile: f.identityFile },
      environments: {
        [ENVIRONMENT]: {
          hosts: Object.fromEntries(f.hosts.map((h) => [h.name, { address: h.address, ...(opts.hosts?.[h.name] ?? {}) }])),
          groups,
          ...(opts.services ? { services: opts.services } : {}),
        },
      },
    }),
  );
  return file;
}

/** OpenSSH options every ssh-based tool gets: the fleet's key, its known_hosts, strict checking, no prompts. */
export function sshOptions(): string[] {
  const f = benchFleet();
  return ['-i', f.identityFile, '-o', `UserKnownHostsFile=${f.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-p', String(BENCH_FLEET_PORT)];
}
