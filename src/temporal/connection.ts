// Connection settings from the environment, shared by the worker, the CLI and `npm start`.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@temporalio/client';

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
