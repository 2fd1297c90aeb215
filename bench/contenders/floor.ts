// The floor: what connect + exec costs with the same SSH library and concurrency, and nothing else — no
// Temporal, no run guard, no connection pool. opsflow cannot be faster than this on cold connections.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Client } from 'ssh2';
import type { FleetHost } from '../../test/support/fleet';
import { benchFleet } from '../lib/fleet';
import { mapLimit } from '../lib/stats';
import { FANOUT, type Contender } from './contender';

/** "[address]:port" → the key blob, read once: the floor verifies host keys, at the least possible cost. */
function knownKeys(file: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [names, , blob] = line.trim().split(/\s+/);
    if (names && blob) for (const n of names.split(',')) keys.set(n, Buffer.from(blob, 'base64'));
  }
  return keys;
}

function connectAndExec(host: FleetHost, command: string, key: Buffer, known: Map<string, Buffer>, user: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: host.address, port: host.port });
    sock.setNoDelay(true);
    const client = new Client();
    const fail = (err: Error) => {
      client.end();
      reject(new Error(`${host.name}: ${err.message}`));
    };
    client.once('error', fail);
    client.once('ready', () => {
      client.exec(command, (err, channel) => {
        if (err) return fail(err);
        channel.resume();
        channel.stderr.resume();
        channel.once('close', (code: number | null) => {
          client.end();
          if (code === 0) resolve();
          else reject(new Error(`${host.name}: exit ${code}`));
        });
      });
    });
    client.connect({
      sock,
      username: user,
      privateKey: key,
      readyTimeout: 30_000,
      hostVerifier: (presented: Buffer) => known.get(`[${host.address}]:${host.port}`)?.equals(presented) ?? false,
    });
  });
}

export function floor(): Contender {
  const f = benchFleet();
  const key = readFileSync(f.identityFile);
  const known = knownKeys(f.knownHostsFile);
  return {
    name: 'floor (bare ssh2)',
    async run(hosts, command) {
      await mapLimit(hosts, FANOUT, (h) => connectAndExec(h, command.join(' '), key, known, f.user));
    },
  };
}
