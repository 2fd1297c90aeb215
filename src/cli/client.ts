// The CLI's one Temporal connection per invocation.
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { KeyError } from '../codec/keys';
import { dataConverterFromEnv, targetFromEnv } from '../temporal/connection';
import { CliError } from './cliError';
import { usage } from './usage';

/**
 * A connection that is ready once the channel is up, without `Connection.connect`'s first call (GetSystemInfo, for
 * capabilities only a worker uses): one round trip, and one message's encoder to generate, less per command.
 */
class CliConnection extends Connection {
  static async open(options: ConnectionOptions & { connectTimeoutMs: number }): Promise<CliConnection> {
    const connection = this.lazy(options) as CliConnection;
    await connection.untilReady(Date.now() + options.connectTimeoutMs);
    return connection;
  }
}

export async function connect(): Promise<{ client: Client; connection: Connection }> {
  const target = targetFromEnv() ?? { address: '127.0.0.1:7233', namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' };
  const dataConverter = codecSetting(dataConverterFromEnv);
  usage.temporal = true;
  try {
    const connection = await CliConnection.open({ address: target.address, tls: target.tls, apiKey: target.apiKey, connectTimeoutMs: 5000 });
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
