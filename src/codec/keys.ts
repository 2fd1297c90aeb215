// Payload encryption keys: `<id>:<base64 of 32 bytes>` entries, the first one current.
//
// Rotation is by key id: put a new key first and keep the old ones after it. New payloads are encrypted
// with the first key; a payload names the key it was encrypted with, so any listed key still decrypts
// what it encrypted. Drop an old key only once no history you still read was written with it.
import { readFileSync, statSync } from 'node:fs';

export const KEY_BYTES = 32;
const ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface CodecKey {
  id: string;
  key: Buffer;
}

export interface Keyring {
  /** Encrypts everything new. */
  current: CodecKey;
  /** Every key that may decrypt, by id (the current one included). */
  byId: ReadonlyMap<string, Buffer>;
}

export class KeyError extends Error {}

/** Entries separated by commas, spaces or new lines; `#` starts a comment (key files). */
export function parseKeys(text: string, source: string): Keyring {
  const entries = text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join(' ')
    .split(/[\s,]+/)
    .filter(Boolean);
  if (!entries.length) throw new KeyError(`${source}: no keys (expected "<id>:<base64 of ${KEY_BYTES} bytes>", the first one current)`);
  const keys: CodecKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const at = `${source}: key ${i + 1}`;
    const sep = entry.indexOf(':');
    if (sep < 0) throw new KeyError(`${at}: expected "<id>:<base64 key>"`);
    const id = entry.slice(0, sep);
    const b64 = entry.slice(sep + 1);
    if (!ID.test(id)) throw new KeyError(`${at}: key id "${id}" must be 1-64 letters, digits, ".", "_" or "-"`);
    const key = Buffer.from(b64, 'base64');
    // Buffer.from ignores characters outside the alphabet: a round trip tells a typo from a key.
    if (key.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) throw new KeyError(`${at} ("${id}"): not valid base64`);
    if (key.length !== KEY_BYTES) throw new KeyError(`${at} ("${id}"): ${key.length} bytes, AES-256 needs ${KEY_BYTES} (make one with: openssl rand -base64 32)`);
    if (keys.some((k) => k.id === id)) throw new KeyError(`${at}: key id "${id}" is listed twice`);
    keys.push({ id, key });
  }
  return { current: keys[0], byId: new Map(keys.map((k) => [k.id, k.key])) };
}

/**
 * The keys from OPSFLOW_CODEC_KEYS or from the file named by OPSFLOW_CODEC_KEY_FILE (never both);
 * undefined when neither is set: payloads are then stored as plain JSON.
 */
export function keyringFromEnv(env: NodeJS.ProcessEnv = process.env): Keyring | undefined {
  const inline = env.OPSFLOW_CODEC_KEYS?.trim();
  const file = env.OPSFLOW_CODEC_KEY_FILE?.trim();
  if (inline && file) throw new KeyError('set OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE, not both');
  if (inline) return parseKeys(inline, 'OPSFLOW_CODEC_KEYS');
  if (!file) return undefined;
  let text: string;
  try {
    if (statSync(file).mode & 0o077) throw new KeyError(`OPSFLOW_CODEC_KEY_FILE ${file}: readable by others; chmod 600 it`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(`OPSFLOW_CODEC_KEY_FILE ${file}: ${(err as Error).message}`);
  }
  return parseKeys(text, file);
}
