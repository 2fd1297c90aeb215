// AES-256-GCM payload codec: what the worker, the CLI and the codec server put between the Temporal server and
// the payload converter, so inputs, results, gate answers, details and heartbeats are stored encrypted.
//
// An encrypted payload is `{ metadata: { encoding: "binary/encrypted", encryption-key-id: <id> }, data }`
// where data is a 12-byte random nonce, the ciphertext of the whole original payload (metadata and data,
// protobuf-encoded) and GCM's 16-byte tag. The key id is also the additional authenticated data, so a
// payload relabelled with another key's id is refused like a tampered one.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Keyring } from './keys';

export const ENCODING = 'binary/encrypted';
export const KEY_ID = 'encryption-key-id';
const NONCE = 12;
const TAG = 16;

const utf8 = new TextEncoder();
const text = new TextDecoder();

export class CodecError extends Error {
  override name = 'CodecError';
}

export function isEncrypted(p: Payload): boolean {
  const enc = p.metadata?.encoding;
  return !!enc && text.decode(enc) === ENCODING;
}

export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly keys: Keyring) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  /** Payloads that are not encrypted (written before encryption was switched on) pass through unchanged. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => (isEncrypted(p) ? this.decrypt(p) : p));
  }

  encrypt(payload: Payload): Payload {
    const { id, key } = this.keys.current;
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(id));
    const body = Buffer.concat([cipher.update(temporal.api.common.v1.Payload.encode(payload).finish()), cipher.final()]);
    return {
      metadata: { encoding: utf8.encode(ENCODING), [KEY_ID]: utf8.encode(id) },
      data: Buffer.concat([nonce, body, cipher.getAuthTag()]),
    };
  }

  decrypt(payload: Payload): Payload {
    const raw = payload.metadata?.[KEY_ID];
    if (!raw) throw new CodecError(`encrypted payload without the "${KEY_ID}" metadata: cannot tell which key to use`);
    const id = text.decode(raw);
    const key = this.keys.byId.get(id);
    if (!key) throw new CodecError(`payload was encrypted with key "${id}", which is not configured here (known: ${[...this.keys.byId.keys()].join(', ')}); add it after the current key in OPSFLOW_CODEC_KEYS / OPSFLOW_CODEC_KEY_FILE`);
    const data = Buffer.from(payload.data ?? []);
    if (data.length < NONCE + TAG) throw new CodecError(`encrypted payload (key "${id}") is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE));
    decipher.setAAD(Buffer.from(id));
    decipher.setAuthTag(data.subarray(data.length - TAG));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(NONCE, data.length - TAG)), decipher.final()]);
    } catch {
      throw new CodecError(`payload (key "${id}") failed authentication: it was altered, or key "${id}" here is not the key it was encrypted with`);
    }
    return temporal.api.common.v1.Payload.decode(plain) as Payload;
  }
}
