// Real sshd "hosts" on loopback (127.0.<net>.<i>), managed by test/fleet/fleet.sh: the test suite's fleet and the
// sandbox's web nodes. See test/fleet/README.md.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fingerprint } from '../activities/ssh/hostKeys';
import { FLEET_SCRIPT } from './paths';

export { FLEET_SCRIPT };

export interface FleetHost {
  name: string;
  address: string;
  port: number;
  dir: string;
}

export interface Fleet {
  dir: string;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  hosts: FleetHost[];
}

export const DEFAULT_FLEET_DIR = '/tmp/opsflow-fleet';
export const FLEET_USER = 'opsflow-fleet';

/** Runs fleet.sh with the given arguments and returns its stdout. Throws with fleet.sh's stderr on failure. */
export function fleetScript(...args: string[]): string {
  try {
    return execFileSync('bash', [FLEET_SCRIPT, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { status?: number | null; signal?: string | null; stderr?: string | Buffer };
    const stderr = (e.stderr ?? '').toString().trim();
    const how = e.signal ? `killed by ${e.signal}` : `exit status ${e.status ?? '?'}`;
    throw new Error(`fleet.sh ${args.join(' ')} failed (${how})${stderr ? `:\n${stderr}` : ''}`, { cause: err });
  }
}

/** Reads DIR/hosts.json of a fleet started earlier (does not start anything). */
export function readFleet(dir: string = DEFAULT_FLEET_DIR): Fleet {
  const file = path.join(dir, 'hosts.json');
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(parsed)) throw new Error(`${file}: expected a JSON array`);
  const hosts = parsed.map((h: unknown, i): FleetHost => {
    const o = h as Partial<FleetHost> | null;
    if (
      !o ||
      typeof o.name !== 'string' ||
      typeof o.address !== 'string' ||
      typeof o.port !== 'number' ||
      typeof o.dir !== 'string'
    ) {
      throw new Error(`${file}: bad entry #${i}: ${JSON.stringify(h)}`);
    }
    return { name: o.name, address: o.address, port: o.port, dir: o.dir };
  });
  return {
    dir,
    user: FLEET_USER,
    identityFile: path.join(dir, 'keys', 'id_ed25519'),
    knownHostsFile: path.join(dir, 'known_hosts'),
    hosts,
  };
}

/**
 * Starts (idempotently) a fleet of `count` hosts h1..hN on 127.0.<net>.1..N:port (net 10 unless given) and
 * waits until all accept connections. Hosts already running are left alone;
 * hosts beyond `count` from an earlier, larger fleet in the same dir are stopped.
 */
export function startFleet(opts: { count?: number; dir?: string; port?: number; net?: number } = {}): Fleet {
  const dir = path.resolve(opts.dir ?? DEFAULT_FLEET_DIR);
  const args = ['start', '--dir', dir];
  if (opts.count !== undefined) args.push('--count', String(opts.count));
  if (opts.port !== undefined) args.push('--port', String(opts.port));
  if (opts.net !== undefined) args.push('--net', String(opts.net));
  fleetScript(...args);
  return readFleet(dir);
}

/** Stops every host of the fleet in `dir` (and what runs in their sessions). */
export function stopFleet(dir: string = DEFAULT_FLEET_DIR): void {
  fleetScript('stop', '--dir', path.resolve(dir));
}

/** The fleet user's home directory: one for all hosts, as an NFS-mounted home is. */
export function fleetHome(): string {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${FLEET_USER}:`));
  if (!line) throw new Error(`no user ${FLEET_USER}: start the fleet first`);
  return line.split(':')[5];
}

/** The SHA256 fingerprint of a fleet host's key, as the run guard records it. */
export function hostKeyFingerprint(host: FleetHost): string {
  return fingerprint(Buffer.from(readFileSync(path.join(host.dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ')[1], 'base64'));
}
