// One SSH connection per host, shared by every command the worker runs there, closed after a short idle time.
// A handshake costs far more than an exec, and sshd refuses more than MaxStartups concurrent handshakes.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel } from 'ssh2';
import type { HostConnection } from '../../config/inventory';
import { fingerprint, HostKeyVerifier } from './hostKeys';
import { collect, localShell, type HostShell } from '../hostShell';
import { HostKeyRejected, Misconfigured, SshAuthFailed, SshChannelFailed, SshConfigError, SshConnectFailed } from '../../common/errors';

export interface PoolOptions {
  /** A function for an inventory that may be reread (a worker's): the file in force at each connect. */
  knownHostsFile?: string | (() => string | undefined);
  /** Close a connection this long after its last channel ended. */
  idleMs?: number;
  /** Concurrent channels per connection; sshd's MaxSessions default is 10. */
  channelsPerConnection?: number;
  connectTimeoutMs?: number;
  /** Consulted before anything runs on a host; throws to refuse (the change embargo). */
  guard?: (host: HostConnection) => Promise<void>;
}

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

interface Pooled {
  client: Client;
  closeAll: () => void;
  channels: Semaphore;
  active: number;
  idleTimer?: NodeJS.Timeout;
  dead: boolean;
}

// The fingerprint of the host key each connection verified: who is on the other end, as the run guard records it.
const verifiedKeys = new WeakMap<Client, string>();

/** The SHA256 fingerprint of the host key this connection verified. */
export function verifiedHostKey(client: Client): string {
  const fp = verifiedKeys.get(client);
  if (!fp) throw new Error('this SSH connection has not verified a host key');
  return fp;
}

function keyOf(c: HostConnection): string {
  return [c.user, c.address, c.port, ...c.jumps.map((j) => `${j.user}@${j.address}:${j.port}`)].join('|');
}

export class SshPool {
  private readonly conns = new Map<string, Promise<Pooled>>();
  private readonly verifier: HostKeyVerifier;

  constructor(private readonly opts: PoolOptions = {}) {
    this.verifier = new HostKeyVerifier(opts.knownHostsFile);
  }

  /** Throws when the guard refuses this host. */
  async admit(host: HostConnection): Promise<void> {
    await this.opts.guard?.(host);
  }

  /** Runs `fn` with a shell on the host: a channel of its SSH connection, or the worker's own for a local host. */
  async shell<T>(host: HostConnection, fn: (shell: HostShell) => Promise<T>): Promise<T> {
    if (!host.local) return this.with(host, (client) => fn(sshShell(client)));
    await this.admit(host);
    return fn(localShell());
  }

  /** Runs `fn` with a channel slot reserved on the host's SSH connection. */
  async with<T>(host: HostConnection, fn: (client: Client) => Promise<T>): Promise<T> {
    if (host.local) throw new Misconfigured(`${host.name} is a local host (connection: local): this step needs an SSH connection to it`);
    await this.admit(host);
    const pooled = await this.get(host);
    await pooled.channels.acquire();
    pooled.active++;
    clearTimeout(pooled.idleTimer);
    try {
      return await fn(pooled.client);
    } finally {
      pooled.active--;
      pooled.channels.release();
      if (pooled.active === 0 && !pooled.dead) {
        pooled.idleTimer = setTimeout(() => this.drop(host, pooled), this.opts.idleMs ?? 30_000);
        pooled.idleTimer.unref();
      }
    }
  }

  private get(host: HostConnection): Promise<Pooled> {
    const key = keyOf(host);
    let entry = this.conns.get(key);
    if (!entry) {
      entry = this.open(host);
      this.conns.set(key, entry);
      entry.then(
        (p) => {
          const forget = () => {
            p.dead = true;
            if (this.conns.get(key) === entry) this.conns.delete(key);
          };
          p.client.on('close', forget);
          p.client.on('error', forget);
        },
        () => this.conns.delete(key),
      );
    }
    return entry;
  }

  private drop(host: HostConnection, pooled: Pooled): void {
    const key = keyOf(host);
    pooled.dead = true;
    this.conns.delete(key);
    pooled.closeAll();
  }

  async closeAll(): Promise<void> {
    const all = [...this.conns.values()];
    this.conns.clear();
    for (const p of await Promise.allSettled(all)) if (p.status === 'fulfilled') p.value.closeAll();
  }

  private async open(host: HostConnection): Promise<Pooled> {
    const opened: Client[] = [];
    const closeAll = () => opened.reverse().forEach((c) => c.end());
    try {
      let via: Client | undefined;
      for (const hop of [...host.jumps, host]) {
        via = await this.connectOne(hop, via);
        opened.push(via);
      }
      return { client: via as Client, closeAll, channels: new Semaphore(this.opts.channelsPerConnection ?? 8), active: 0, dead: false };
    } catch (err) {
      closeAll();
      throw err;
    }
  }

  private async socketTo(host: HostConnection, via: Client | undefined): Promise<Duplex> {
    const timeout = this.opts.connectTimeoutMs ?? 15_000;
    if (via) {
      return new Promise<Duplex>((resolve, reject) => {
        via.forwardOut('127.0.0.1', 0, host.address, host.port, (err, stream) => {
          if (err) reject(new SshConnectFailed(`cannot reach ${host.name} (${host.address}:${host.port}) through the jump host: ${err.message}`));
          else resolve(stream);
        });
      });
    }
    return new Promise<Duplex>((resolve, reject) => {
      const sock = net.connect({ host: host.address, port: host.port });
      // Nagle's algorithm holds each small SSH packet back ~40 ms on loopback and LANs.
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new SshConnectFailed(`connection to ${host.name} (${host.address}:${host.port}) timed out after ${timeout} ms`));
      }, timeout);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(sock);
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(new SshConnectFailed(`cannot connect to ${host.name} (${host.address}:${host.port}): ${err.message}`));
      });
    });
  }

  private credentials(host: HostConnection): { privateKey?: Buffer; passphrase?: string; agent?: string } {
    const creds: { privateKey?: Buffer; passphrase?: string; agent?: string } = {};
    if (host.identityFile) {
      try {
        creds.privateKey = readFileSync(host.identityFile);
      } catch (err) {
        throw new SshConfigError(`cannot read the identity file for ${host.name}: ${(err as NodeJS.ErrnoException).code ?? 'error'} ${host.identityFile}`);
      }
    }
    if (host.passphraseEnv) {
      const value = process.env[host.passphraseEnv];
      if (value === undefined) throw new SshConfigError(`the key for ${host.name} needs a passphrase: set ${host.passphraseEnv} in the worker's environment`);
      creds.passphrase = value;
    }
    if (host.agent) {
      if (!process.env.SSH_AUTH_SOCK) throw new SshConfigError(`${host.name} uses the SSH agent but SSH_AUTH_SOCK is not set for the worker`);
      creds.agent = process.env.SSH_AUTH_SOCK;
    }
    return creds;
  }

  private async connectOne(host: HostConnection, via: Client | undefined): Promise<Client> {
    const creds = this.credentials(host);
    const sock = await this.socketTo(host, via);
    const client = new Client();
    let rejection: string | undefined;
    return new Promise<Client>((resolve, reject) => {
      client.once('ready', () => resolve(client));
      client.once('error', (err: Error & { level?: string }) => {
        client.end();
        if (rejection) reject(new HostKeyRejected(rejection));
        else if (err.level === 'client-authentication')
          reject(new SshAuthFailed(`${host.user}@${host.name} (${host.address}:${host.port}) refused our key: ${err.message}`));
        else if (/encrypted private key|passphrase/i.test(err.message))
          reject(new SshConfigError(`the private key for ${host.name} could not be decrypted: check ${host.passphraseEnv ?? 'passphraseEnv'}`));
        else reject(new SshConnectFailed(`SSH to ${host.name} (${host.address}:${host.port}) failed: ${err.message}`));
      });
      try {
        client.connect({
          sock,
          username: host.user,
          ...creds,
          readyTimeout: this.opts.connectTimeoutMs ?? 15_000,
          keepaliveInterval: 10_000,
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            const verdict = this.verifier.verify(host, key);
            if (!verdict.ok) rejection = verdict.reason;
            else verifiedKeys.set(client, fingerprint(key));
            return verdict.ok;
          },
        });
      } catch (err) {
        // ssh2 throws synchronously on a key it cannot parse or decrypt.
        sock.destroy();
        reject(new SshConfigError(`the private key for ${host.name} cannot be used: ${(err as Error).message}`));
      }
    });
  }
}

/** A shell on an SSH host: its channels, and the host key the connection verified as who it is. */
function sshShell(client: Client): HostShell {
  return {
    identity: verifiedHostKey(client),
    async run(command) {
      const channel = await exec(client, command);
      return collect(channel, channel.stderr, new Promise((resolve) => channel.on('close', (code: number | null, signal?: string) => resolve({ code: code ?? null, signal: signal ?? null }))));
    },
  };
}

export function exec(client: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => (err ? reject(new SshChannelFailed(`cannot open a channel: ${err.message}`)) : resolve(channel)));
  });
}
