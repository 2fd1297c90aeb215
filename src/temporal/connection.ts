// Connection settings from the environment, shared by the worker, the CLI and `npm start`.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec } from '../codec/aesGcm';
import { keyringFromEnv } from '../codec/keys';

export interface TemporalTarget {
  address: string;
  namespace: string;
  tls?: ConnectionOptions['tls'];
  apiKey?: string;
}

const file = (name: string) => {
  const p = process.env[name];
  return p ? readFileSync(p) : undefined;
};

/** Undefined when TEMPORAL_ADDRESS is not set: the caller runs its own dev server. */
export function targetFromEnv(): TemporalTarget | undefined {
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address) return undefined;
  const cert = file('TEMPORAL_TLS_CERT');
  const key = file('TEMPORAL_TLS_KEY');
  if (!!cert !== !!key) throw new Error('set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY, or neither');
  const ca = file('TEMPORAL_TLS_CA');
  const apiKey = process.env.TEMPORAL_API_KEY || undefined;
  const tlsWanted = cert || ca || apiKey || process.env.TEMPORAL_TLS === 'true';
  return {
    address,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    apiKey,
    tls: tlsWanted
      ? {
          serverNameOverride: process.env.TEMPORAL_TLS_SERVER_NAME,
          serverRootCACertificate: ca,
          clientCertPair: cert && key ? { crt: cert, key } : undefined,
        }
      : undefined,
  };
}

/**
 * Payload encryption (AES-256-GCM) when OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE is set, for the worker and
 * every client alike: they must agree, or one side cannot read what the other wrote.
 */
export function dataConverterFromEnv(): DataConverter | undefined {
  const keys = keyringFromEnv();
  return keys ? { payloadCodecs: [new AesGcmCodec(keys)] } : undefined;
}
