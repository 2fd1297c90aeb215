// Host key verification. ssh2 accepts any key unless told otherwise; opsflow refuses every key that is not
// pinned in the inventory or listed in its known_hosts file, so a new or changed key never goes unnoticed.
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

interface KnownHostEntry {
  revoked: boolean;
  patterns: string[];
  blob: Buffer;
}

export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name OpenSSH records: bare for port 22, `[host]:port` otherwise. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

function keyBlob(line: string): Buffer {
  return Buffer.from(line.trim().split(/\s+/)[1], 'base64');
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0].startsWith('@')) {
      // Certificate authorities are not supported: such lines vouch for no key here.
      if (fields[0] !== '@revoked') continue;
      revoked = true;
      fields.shift();
    }
    if (fields.length < 3) continue;
    entries.push({ revoked, patterns: fields[0].split(','), blob: Buffer.from(fields[2], 'base64') });
  }
  return entries;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    // OpenSSH hashes the lowercased name; plain patterns already match case-insensitively.
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name.toLowerCase()).digest('base64') === hash;
  }
  return globMatch(pattern, name);
}

function entryMatches(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const p of entry.patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) matched = true;
  }
  return matched;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

export interface HostIdentity {
  name: string;
  address: string;
  port: number;
  hostKeys?: string[];
}

export class HostKeyVerifier {
  private readonly file: () => string | undefined;

  constructor(knownHostsFile: string | (() => string | undefined) | undefined) {
    this.file = typeof knownHostsFile === 'function' ? knownHostsFile : () => knownHostsFile;
  }

  private knownHosts(file: string | undefined): KnownHostEntry[] {
    if (!file) return [];
    // Re-read on every verification: operators add keys while the worker runs.
    return parseKnownHosts(readFileSync(file, 'utf8'));
  }

  verify(host: HostIdentity, presented: Buffer): Verdict {
    const seen = fingerprint(presented);
    const file = this.file();
    const label = `${host.name} (${knownHostsName(host.address, host.port)})`;
    const lookup = knownHostsName(host.address, host.port);
    const entries = host.hostKeys ? host.hostKeys.map((k) => ({ revoked: false, patterns: [lookup], blob: keyBlob(k) })) : this.knownHosts(file).filter((e) => entryMatches(e, lookup));
    const source = host.hostKeys ? 'the inventory\'s pinned hostKeys' : `known_hosts ${file ?? '(none configured)'}`;
    if (entries.some((e) => e.revoked && e.blob.equals(presented))) return { ok: false, reason: `host key ${seen} of ${label} is revoked in ${source}` };
    const trusted = entries.filter((e) => !e.revoked);
    if (!trusted.length) return { ok: false, reason: `unknown host key for ${label}: ${seen} is not in ${source}; verify it out of band and add it` };
    if (trusted.some((e) => e.blob.equals(presented))) return { ok: true };
    return {
      ok: false,
      reason: `host key for ${label} does not match ${source}: presented ${seen}, expected ${trusted.map((e) => fingerprint(e.blob)).join(' or ')} (the key changed, or someone is intercepting the connection)`,
    };
  }
}
