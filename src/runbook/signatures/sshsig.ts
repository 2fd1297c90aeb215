// OpenSSH's SSHSIG format (PROTOCOL.sshsig), what `ssh-keygen -Y sign` writes, for ssh-ed25519 and
// ecdsa-sha2-nistp256 keys. Pure JavaScript on Uint8Array (no Buffer, no node:crypto, no I/O), because the
// update validator verifies signatures inside the workflow sandbox, and deterministically, so replay agrees.
import { ed25519 } from '@noble/curves/ed25519';
import { p256 } from '@noble/curves/p256';
import { sha256, sha512 } from '@noble/hashes/sha2';
import { bytesToUtf8, concatBytes, utf8ToBytes } from '@noble/hashes/utils';

export const KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

const MAGIC = utf8ToBytes('SSHSIG');
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';
const HASHES = { sha256, sha512 } as const;

/** A malformed key or signature; the message says what is wrong with it. */
export class SshsigError extends Error {}

// ---- base64 (the sandbox has neither Buffer nor a guaranteed atob) ----------------------------------------

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function base64Decode(text: string): Uint8Array {
  const s = text.replace(/=+$/, '');
  if (s.length % 4 === 1) throw new SshsigError('bad base64 length');
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (const c of s) {
    const v = DECODE.get(c);
    if (v === undefined) throw new SshsigError(`bad base64 character ${JSON.stringify(c)}`);
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  return out;
}

export function base64Encode(bytes: Uint8Array, pad = true): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = [18, 12, 6, 0].map((shift) => ALPHABET[(n >> shift) & 63]);
    const kept = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    out += chars.slice(0, kept).join('') + (pad ? '='.repeat(4 - kept) : '');
  }
  return out;
}

// ---- SSH wire format (RFC 4251 strings and uint32s) -----------------------------------------------------

class Reader {
  private pos = 0;
  constructor(private readonly bytes: Uint8Array, private readonly what: string) {}

  take(n: number): Uint8Array {
    if (this.pos + n > this.bytes.length) throw new SshsigError(`${this.what} is truncated`);
    return this.bytes.subarray(this.pos, (this.pos += n));
  }

  uint32(): number {
    const b = this.take(4);
    return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  }

  string(): Uint8Array {
    return this.take(this.uint32());
  }

  text(): string {
    return bytesToUtf8(this.string());
  }

  end(): void {
    if (this.pos !== this.bytes.length) throw new SshsigError(`${this.what} has trailing bytes`);
  }
}

function uint32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

export function sshString(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === 'string' ? utf8ToBytes(data) : data;
  return concatBytes(uint32(bytes.length), bytes);
}

/** An mpint (RFC 4251) of a positive big-endian number: no leading zeros, one zero byte if the top bit is set. */
function mpint(unsigned: Uint8Array): Uint8Array {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const trimmed = unsigned.subarray(i);
  return sshString(trimmed.length && trimmed[0] & 0x80 ? concatBytes(new Uint8Array([0]), trimmed) : trimmed);
}

/** A 32-byte big-endian scalar from an mpint's bytes (which may carry a leading zero). */
function scalar32(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  if (trimmed.length > 32) throw new SshsigError('ECDSA signature value out of range');
  const out = new Uint8Array(32);
  out.set(trimmed, 32 - trimmed.length);
  return out;
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---- public keys ----------------------------------------------------------------------------------------

export interface PublicKey {
  type: KeyType;
  /** The key's wire encoding, as in an authorized_keys line and in a signature. */
  blob: Uint8Array;
  /** The raw key: 32 bytes for ed25519, the uncompressed point for P-256. */
  point: Uint8Array;
  /** As `ssh-keygen -l` prints it: SHA256:<base64, unpadded>. */
  fingerprint: string;
}

export function parsePublicKeyBlob(blob: Uint8Array): PublicKey {
  const r = new Reader(blob, 'public key');
  const type = r.text();
  let point: Uint8Array;
  if (type === 'ssh-ed25519') {
    point = r.string();
    if (point.length !== 32) throw new SshsigError('ssh-ed25519 key is not 32 bytes');
  } else if (type === 'ecdsa-sha2-nistp256') {
    if (r.text() !== 'nistp256') throw new SshsigError('ecdsa-sha2-nistp256 key names another curve');
    point = r.string();
    if (point.length !== 65 || point[0] !== 4) throw new SshsigError('ecdsa-sha2-nistp256 key is not an uncompressed point');
  } else {
    throw new SshsigError(`key type ${type} is not supported (use ${KEY_TYPES.join(' or ')})`);
  }
  r.end();
  return { type, blob, point, fingerprint: fingerprintOf(blob) };
}

/** Parses an OpenSSH public key line ("ssh-ed25519 AAAA... comment"). */
export function parsePublicKey(line: string): PublicKey {
  const [type, data] = line.trim().split(/\s+/);
  if (!data) throw new SshsigError('not an OpenSSH public key line ("<type> <base64> [comment]")');
  const key = parsePublicKeyBlob(base64Decode(data));
  if (key.type !== type) throw new SshsigError(`key line says ${type} but holds a ${key.type} key`);
  return key;
}

export function fingerprintOf(blob: Uint8Array): string {
  return `SHA256:${base64Encode(sha256(blob), false)}`;
}

// ---- signatures -----------------------------------------------------------------------------------------

export interface Sshsig {
  publicKey: PublicKey;
  namespace: string;
  hashAlgorithm: keyof typeof HASHES;
  reserved: Uint8Array;
  /** The inner signature blob: string type, string signature bytes. */
  signature: Uint8Array;
}

/** Reads an armored SSH signature (-----BEGIN SSH SIGNATURE----- ...). Whitespace and line breaks are free. */
export function parseSshsig(armored: string): Sshsig {
  const text = armored.trim();
  if (!text.startsWith(BEGIN) || !text.endsWith(END)) throw new SshsigError(`not an SSH signature: it must start with ${BEGIN} and end with ${END}`);
  const r = new Reader(base64Decode(text.slice(BEGIN.length, -END.length).replace(/\s+/g, '')), 'signature');
  if (!equalBytes(r.take(6), MAGIC)) throw new SshsigError('not an SSHSIG blob (bad magic)');
  const version = r.uint32();
  if (version !== 1) throw new SshsigError(`SSHSIG version ${version} is not supported`);
  const publicKey = parsePublicKeyBlob(r.string());
  const namespace = r.text();
  const reserved = r.string();
  const hashAlgorithm = r.text();
  if (hashAlgorithm !== 'sha256' && hashAlgorithm !== 'sha512') throw new SshsigError(`hash algorithm ${hashAlgorithm} is not supported`);
  const signature = r.string();
  r.end();
  return { publicKey, namespace, hashAlgorithm, reserved, signature };
}

/** The bytes a key signs for an SSHSIG: magic, namespace, reserved, hash algorithm and the message's hash. */
export function signedData(namespace: string, message: Uint8Array, hashAlgorithm: keyof typeof HASHES = 'sha512', reserved: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concatBytes(MAGIC, sshString(namespace), sshString(reserved), sshString(hashAlgorithm), sshString(HASHES[hashAlgorithm](message)));
}

/** Whether `sig` is a valid signature of `message` by the key it carries. Namespace and key are the caller's to check. */
export function verifySshsig(sig: Sshsig, message: Uint8Array): boolean {
  const data = signedData(sig.namespace, message, sig.hashAlgorithm, sig.reserved);
  const r = new Reader(sig.signature, 'signature blob');
  const type = r.text();
  const bytes = r.string();
  r.end();
  if (type !== sig.publicKey.type) throw new SshsigError(`a ${sig.publicKey.type} key cannot make a ${type} signature`);
  if (type === 'ssh-ed25519') return bytes.length === 64 && ed25519.verify(bytes, data, sig.publicKey.point);
  const rs = new Reader(bytes, 'ECDSA signature');
  const compact = concatBytes(scalar32(rs.string()), scalar32(rs.string()));
  rs.end();
  // OpenSSH does not normalise s to its low half, so high-s signatures are valid here.
  return p256.verify(compact, sha256(data), sig.publicKey.point, { prehash: false, lowS: false, format: 'compact' });
}

/** The signature blob of an SSHSIG: string key type, string signature (ed25519's 64 bytes, or ecdsaSignature). */
export function signatureBlob(type: KeyType, signature: Uint8Array): Uint8Array {
  return concatBytes(sshString(type), sshString(signature));
}

/** An ECDSA signature as SSH encodes it: mpint r, mpint s (from big-endian values). */
export function ecdsaSignature(r: Uint8Array, s: Uint8Array): Uint8Array {
  return concatBytes(mpint(r), mpint(s));
}

/** An armored SSHSIG, wrapped at 70 columns as ssh-keygen does. */
export function armorSshsig(publicKeyBlob: Uint8Array, namespace: string, signature: Uint8Array, hashAlgorithm: keyof typeof HASHES = 'sha512'): string {
  const blob = concatBytes(MAGIC, uint32(1), sshString(publicKeyBlob), sshString(namespace), sshString(new Uint8Array(0)), sshString(hashAlgorithm), sshString(signature));
  const b64 = base64Encode(blob);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70));
  return [BEGIN, ...lines, END].join('\n');
}
