// The two ways a command reaches a host: SSH to a fleet host, and `connection: local` (the worker's own machine).
// Tests of argv quoting and of the run guard run over both, so the local host keeps every promise SSH makes.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { localIdentity } from '../../src/activities/hostShell';
import type { RanOn } from '../../src/activities/ssh/remoteRun';
import { FLEET_USER, hostKeyFingerprint, type FleetHost } from './fleet';
import { fleet } from './harness';

export interface Transport {
  name: 'ssh' | 'local';
  environment: string;
  /** Hosts of `environment` the tests use, one or more. */
  hosts: string[];
  /** The identity a host's results must carry. */
  ranOn(host: string): RanOn;
  /** Who runs commands there, and so owns the run guard's state directory (its default, /var/tmp/opsflow-<user>). */
  user: string;
}

/** The environment and host that writeInventory's `environments` option adds for the local transport. */
export const LOCAL_ENVIRONMENT = { local: { hosts: { localhost: { connection: 'local' } } } };

export const SSH: Transport = {
  name: 'ssh',
  environment: 'test',
  hosts: ['h1', 'h2', 'h3'],
  ranOn(host) {
    const h = fleet().hosts.find((x) => x.name === host) as FleetHost;
    return { hostKey: hostKeyFingerprint(h), bootId: readFileSync(path.join(h.dir, 'boot_id'), 'utf8').trim() };
  },
  user: FLEET_USER,
};

export const LOCAL: Transport = {
  name: 'local',
  environment: 'local',
  hosts: ['localhost'],
  ranOn: () => ({ hostKey: localIdentity(), bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() }),
  user: userInfo().username,
};

export const TRANSPORTS = [SSH, LOCAL];

export const guardState = (t: Transport) => `/var/tmp/opsflow-${t.user}`;
