// The CLI's one Temporal connection per invocation.
import { Client, Connection } from '@temporalio/client';
import { KeyError } from '../codec/keys';
import { dataConverterFromEnv, targetFromEnv } from '../temporal/connection';
import { CliError } from './cliError';

export async function connect(): Promise<{ client: Client; connection: Connection }> {
  const target = targetFromEnv() ?? { address: '127.0.0.1:7233', namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' };
  const dataConverter = codecSetting(dataConverterFromEnv);
  try {
    const connection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey, connectTimeout: '5s' });
    return { client: new Client({ connection, namespace: target.namespace, dataConverter }), connection };
  } catch (err) {
    throw new CliError(`cannot reach Temporal at ${target.address}: ${(err as Error).message} (is \`npm start\` running, or TEMPORAL_ADDRESS set?)`);
  }
}

/** A bad key setting is a configuration mistake: exit 2 with what is wrong. */
export function codecSetting<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof KeyError) throw new CliError(err.message, 2);
    throw err;
  }
}

export async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, connection } = await connect();
  try {
    return await fn(client);
  } finally {
    await connection.close();
  }
}
