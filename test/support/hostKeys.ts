// Host keys that changed: a known_hosts file that lists some fleet hosts with another host's key, as it reads to
// opsflow after those hosts were reinstalled (or when someone intercepts the connection).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fingerprint } from '../../src/activities/ssh/hostKeys';
import { fleet } from './harness';

const keyOf = (line: string) => line.split(' ').slice(1, 3).join(' ');

/**
 * A copy of the fleet's known_hosts in which each host of `changed` is listed with h9's key; returns the file and,
 * by host, the fingerprint of the key it really presents.
 */
export function knownHostsWithChangedKeys(changed: string[], file = path.join(fleet().dir, `known_hosts-changed-${changed.join('-')}`)): { file: string; presented: Record<string, string> } {
  const lines = readFileSync(fleet().knownHostsFile, 'utf8').split('\n').filter(Boolean);
  const lineOf = (host: string) => {
    const h = fleet().hosts.find((x) => x.name === host);
    const line = h && lines.find((l) => l.startsWith(`[${h.address}]:${h.port} `));
    if (!line) throw new Error(`no known_hosts line for ${host}`);
    return line;
  };
  const other = keyOf(lineOf('h9'));
  const presented = Object.fromEntries(changed.map((h) => [h, fingerprint(Buffer.from(keyOf(lineOf(h)).split(' ')[1], 'base64'))]));
  const victims = new Set(changed.map(lineOf));
  writeFileSync(file, lines.map((l) => (victims.has(l) ? `${l.split(' ')[0]} ${other}` : l)).join('\n') + '\n');
  return { file, presented };
}
