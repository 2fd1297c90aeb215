// The embedded Temporal dev server: `npm start` runs it persisted to SQLite with the Web UI; the tests run one
// in memory for the whole suite.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../common/constants';
import { temporalCliMissing } from '../common/errors';
import { ensureTemporalCli, TEMPORAL_CLI_MODULE } from './binary';

export interface DevServerOptions {
  /** SQLite file; runs survive a restart. In memory when absent. */
  dbFilename?: string;
  ip?: string;
  port?: number;
  /** Serve the Web UI on this port. */
  uiPort?: number;
  /** Codec server the UI uses to show decoded payloads. */
  codecEndpoint?: string;
  /** Temporal's own defaults instead of DYNAMIC_CONFIG_FILE's settings: the bench measures what they save. */
  serverDefaults?: boolean;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

/** The server settings every opsflow server uses; docker-compose.temporal.yml mounts the same file. */
export const DYNAMIC_CONFIG_FILE = path.resolve(__dirname, '../../config/dynamicconfig/opsflow.yaml');

type DynamicConfig = Record<string, Array<{ value: unknown; constraints?: Record<string, unknown> }>>;

/** The file's unconstrained values as `--dynamic-config-value KEY=JSON` arguments (the flag takes no constraints). */
export function dynamicConfigArgs(file = DYNAMIC_CONFIG_FILE): string[] {
  const config = parse(readFileSync(file, 'utf8')) as DynamicConfig;
  return Object.entries(config).flatMap(([key, entries]) => {
    const plain = entries.find((e) => !e.constraints || Object.keys(e.constraints).length === 0);
    return plain ? ['--dynamic-config-value', `${key}=${JSON.stringify(plain.value)}`] : [];
  });
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = ensureTemporalCli();
  const ip = opts.ip ?? '127.0.0.1';
  const local = TestWorkflowEnvironment.createLocal({
    server: {
      executable: cli ? { type: 'existing-path', path: cli } : undefined,
      ip,
      port: opts.port,
      dbFilename: opts.dbFilename,
      ui: opts.uiPort !== undefined,
      uiPort: opts.uiPort,
      searchAttributes: [...SEARCH_ATTRIBUTES],
      extraArgs: [...(opts.serverDefaults ? [] : dynamicConfigArgs()), ...(opts.codecEndpoint ? ['--ui-codec-endpoint', opts.codecEndpoint] : [])],
    },
  });
  // Without a CLI of our own the SDK downloads one; when that fails too, say how to get one instead of its error.
  const env = cli ? await local : await local.catch((err: Error) => Promise.reject(temporalCliMissing(TEMPORAL_CLI_MODULE, err.message.split('\n')[0])));
  return {
    address: env.address,
    uiUrl: opts.uiPort !== undefined ? `http://${ip}:${opts.uiPort}` : undefined,
    stop: () => env.teardown(),
  };
}
