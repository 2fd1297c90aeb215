// Host key verification against known_hosts files and pinned keys, with real keys made by ssh-keygen.
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { HostKeyVerifier, fingerprint, knownHostsName, parseKnownHosts, type HostIdentity } from '../src/activities/ssh/hostKeys';

interface TestKey {
  /** `ssh-ed25519 AAAA...`, as a known_hosts line or a pinned hostKeys entry carries it. */
  line: string;
  /** The wire-format public key, as the server presents it. */
  blob: Buffer;
  /** `SHA256:...` as ssh-keygen -l prints it. */
  sha256: string;
}

let dir: string;
let keyA: TestKey;
let keyB: TestKey;
let keyC: TestKey;

function makeKey(name: string): TestKey {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  const line = readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const sha256 = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1];
  return { line, blob: Buffer.from(line.split(' ')[1], 'base64'), sha256 };
}

/** A verifier over a fresh known_hosts file with these lines. */
function verifierFor(lines: string[]): { verifier: HostKeyVerifier; file: string } {
  const file = path.join(dir, `known_hosts-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
  return { verifier: new HostKeyVerifier(file), file };
}

const host = (address: string, port = 22, hostKeys?: string[]): HostIdentity => ({ name: 'web1', address, port, hostKeys });

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'opsflow-hostkeys-'));
  keyA = makeKey('a');
  keyB = makeKey('b');
  keyC = makeKey('c');
});

describe('fingerprints and names', () => {
  it('computes the SHA256 fingerprint ssh-keygen shows', () => {
    expect(fingerprint(keyA.blob)).toBe(keyA.sha256);
    expect(keyA.sha256).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('names a host as OpenSSH records it: bare on port 22, [host]:port otherwise', () => {
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('web1.example.com', 2222)).toBe('[web1.example.com]:2222');
  });
});

describe('parseKnownHosts', () => {
  it('reads patterns, markers and keys, and skips comments, blank and short lines', () => {
    const entries = parseKnownHosts(
      [
        '# a comment',
        '',
        `web1.example.com,10.0.0.1 ${keyA.line} a comment after the key`,
        `  [10.0.0.2]:2222 ${keyB.line}  `,
        `@revoked * ${keyC.line}`,
        `@cert-authority *.example.com ${keyA.line}`,
        'truncated-line ssh-ed25519',
        `*.example.com,!db.example.com ${keyB.line}\r`,
      ].join('\n'),
    );
    expect(entries).toEqual([
      { revoked: false, patterns: ['web1.example.com', '10.0.0.1'], blob: keyA.blob },
      { revoked: false, patterns: ['[10.0.0.2]:2222'], blob: keyB.blob },
      { revoked: true, patterns: ['*'], blob: keyC.blob },
      { revoked: false, patterns: ['*.example.com', '!db.example.com'], blob: keyB.blob },
    ]);
  });
});

describe('HostKeyVerifier', () => {
  it('accepts the key of a plain entry, for that name only', () => {
    const { verifier } = verifierFor([`web1.example.com ${keyA.line}`]);
    expect(verifier.verify(host('web1.example.com'), keyA.blob)).toEqual({ ok: true });
    expect(verifier.verify(host('WEB1.example.com'), keyA.blob)).toEqual({ ok: true });
    expect(verifier.verify(host('web2.example.com'), keyA.blob).ok).toBe(false);
    // On another port the host is a different known_hosts name.
    expect(verifier.verify(host('web1.example.com', 2222), keyA.blob).ok).toBe(false);
  });

  it('matches [host]:port entries on that port only', () => {
    const { verifier } = verifierFor([`[127.0.0.5]:2222 ${keyA.line}`]);
    expect(verifier.verify(host('127.0.0.5', 2222), keyA.blob)).toEqual({ ok: true });
    expect(verifier.verify(host('127.0.0.5', 22), keyA.blob).ok).toBe(false);
    expect(verifier.verify(host('127.0.0.5', 2223), keyA.blob).ok).toBe(false);
  });

  it('matches hashed entries written by ssh-keygen -H', () => {
    const { verifier, file } = verifierFor([`[127.0.0.5]:2222 ${keyA.line}`, `db.example.com ${keyB.line}`]);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    expect(hashed).not.toContain('example.com');
    expect(hashed).not.toContain('127.0.0.5');
    expect(hashed.match(/^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /gm)).toHaveLength(2);
    expect(verifier.verify(host('127.0.0.5', 2222), keyA.blob)).toEqual({ ok: true });
    expect(verifier.verify(host('db.example.com'), keyB.blob)).toEqual({ ok: true });
    // Host names are case-insensitive, as with plain entries.
    expect(verifier.verify(host('DB.Example.com'), keyB.blob)).toEqual({ ok: true });
    expect(verifier.verify(host('127.0.0.5', 22), keyA.blob).ok).toBe(false);
    expect(verifier.verify(host('web.example.com'), keyB.blob).ok).toBe(false);
  });

  it('matches a hashed entry computed as HMAC-SHA1 of the name, keyed with the salt', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[10.9.8.7]:2200').digest('base64');
    const { verifier } = verifierFor([`|1|${salt.toString('base64')}|${hash} ${keyC.line}`]);
    expect(verifier.verify(host('10.9.8.7', 2200), keyC.blob)).toEqual({ ok: true });
    expect(verifier.verify(host('10.9.8.7', 22), keyC.blob).ok).toBe(false);
  });

  it('matches any of several comma-separated patterns', () => {
    const { verifier } = verifierFor([`web1.example.com,10.0.0.1,[10.0.0.1]:2222 ${keyA.line}`]);
    expect(verifier.verify(host('web1.example.com'), keyA.blob).ok).toBe(true);
    expect(verifier.verify(host('10.0.0.1'), keyA.blob).ok).toBe(true);
    expect(verifier.verify(host('10.0.0.1', 2222), keyA.blob).ok).toBe(true);
    expect(verifier.verify(host('10.0.0.11'), keyA.blob).ok).toBe(false);
  });

  it('matches * and ? wildcards, and nothing else as a wildcard', () => {
    const { verifier } = verifierFor([`*.example.com ${keyA.line}`, `web?.prod.net ${keyB.line}`, `10.0.0.* ${keyC.line}`]);
    expect(verifier.verify(host('a.example.com'), keyA.blob).ok).toBe(true);
    expect(verifier.verify(host('a.b.example.com'), keyA.blob).ok).toBe(true);
    expect(verifier.verify(host('example.com'), keyA.blob).ok).toBe(false);
    expect(verifier.verify(host('a.example.org'), keyA.blob).ok).toBe(false);
    expect(verifier.verify(host('web1.prod.net'), keyB.blob).ok).toBe(true);
    expect(verifier.verify(host('web12.prod.net'), keyB.blob).ok).toBe(false);
    expect(verifier.verify(host('web.prod.net'), keyB.blob).ok).toBe(false);
    // A dot is a dot: 10.0.0.* does not match 10a0b0c5.
    expect(verifier.verify(host('10.0.0.5'), keyC.blob).ok).toBe(true);
    expect(verifier.verify(host('10a0b0c5'), keyC.blob).ok).toBe(false);
  });

  it('lets a negated pattern exclude a host that another pattern of the line matches', () => {
    const { verifier } = verifierFor([`*.example.com,!db.example.com ${keyA.line}`]);
    expect(verifier.verify(host('web.example.com'), keyA.blob).ok).toBe(true);
    const v = verifier.verify(host('db.example.com'), keyA.blob);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain('unknown host key');
    // A negation alone matches nothing.
    expect(verifierFor([`!db.example.com ${keyA.line}`]).verifier.verify(host('web.example.com'), keyA.blob).ok).toBe(false);
  });

  it('refuses a key revoked with @revoked, even where another line trusts it', () => {
    const { verifier } = verifierFor([`web1.example.com ${keyA.line}`, `web2.example.com ${keyB.line}`, `@revoked * ${keyA.line}`]);
    const v = verifier.verify(host('web1.example.com'), keyA.blob);
    expect(v).toEqual({ ok: false, reason: expect.stringContaining(`host key ${keyA.sha256} of web1 (web1.example.com) is revoked in known_hosts`) });
    expect(verifier.verify(host('web2.example.com'), keyB.blob)).toEqual({ ok: true });
  });

  it('ignores @cert-authority lines: they vouch for no key', () => {
    const { verifier } = verifierFor([`@cert-authority *.example.com ${keyA.line}`]);
    const v = verifier.verify(host('web1.example.com'), keyA.blob);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain('unknown host key');
  });

  it('uses pinned hostKeys instead of the known_hosts file', () => {
    const { verifier } = verifierFor([`web1.example.com ${keyA.line}`]);
    expect(verifier.verify(host('web1.example.com', 22, [`${keyB.line} pinned`]), keyB.blob)).toEqual({ ok: true });
    const v = verifier.verify(host('web1.example.com', 22, [keyB.line, keyC.line]), keyA.blob);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toBe(
      `host key for web1 (web1.example.com) does not match the inventory's pinned hostKeys: presented ${keyA.sha256}, expected ${keyB.sha256} or ${keyC.sha256} (the key changed, or someone is intercepting the connection)`,
    );
    // Pinned keys need no known_hosts file at all.
    expect(new HostKeyVerifier(undefined).verify(host('10.0.0.1', 2222, [keyC.line]), keyC.blob)).toEqual({ ok: true });
  });

  it('says an unknown key is unknown, naming the presented fingerprint and where it looked', () => {
    const { verifier, file } = verifierFor([`other.example.com ${keyA.line}`]);
    const v = verifier.verify(host('10.0.0.1', 2222), keyB.blob);
    expect(v).toEqual({
      ok: false,
      reason: `unknown host key for web1 ([10.0.0.1]:2222): ${keyB.sha256} is not in known_hosts ${file}; verify it out of band and add it`,
    });
    const none = new HostKeyVerifier(undefined).verify(host('10.0.0.1'), keyB.blob);
    expect(!none.ok && none.reason).toContain(`${keyB.sha256} is not in known_hosts (none configured)`);
  });

  it('says a changed key changed, naming the presented and the expected fingerprints', () => {
    const { verifier, file } = verifierFor([`[10.0.0.1]:2222 ${keyA.line}`]);
    const v = verifier.verify(host('10.0.0.1', 2222), keyB.blob);
    expect(v).toEqual({
      ok: false,
      reason: `host key for web1 ([10.0.0.1]:2222) does not match known_hosts ${file}: presented ${keyB.sha256}, expected ${keyA.sha256} (the key changed, or someone is intercepting the connection)`,
    });
  });

  it('accepts any of several keys listed for a host', () => {
    const { verifier } = verifierFor([`web1.example.com ${keyA.line}`, `web1.example.com ${keyB.line}`]);
    expect(verifier.verify(host('web1.example.com'), keyA.blob).ok).toBe(true);
    expect(verifier.verify(host('web1.example.com'), keyB.blob).ok).toBe(true);
    expect(verifier.verify(host('web1.example.com'), keyC.blob).ok).toBe(false);
  });

  it('re-reads the file, so a key added while the worker runs is trusted at once', () => {
    const { verifier, file } = verifierFor([]);
    expect(verifier.verify(host('10.0.0.1'), keyA.blob).ok).toBe(false);
    appendFileSync(file, `10.0.0.1 ${keyA.line}\n`);
    expect(verifier.verify(host('10.0.0.1'), keyA.blob)).toEqual({ ok: true });
  });
});
