// The embedded Temporal dev server: `npm start` runs it persisted to SQLite with the Web UI; the tests run one
// in memory for the whole suite.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../common/constants';
import { ensureTemporalCli } from './binary';

export interface DevServerOptions {
  /** SQLite file; runs survive a restart. In memory when absent. */
  dbFilename?: string;
  ip?: string;
  port?: number;
  /** Serve the Web UI on this port. */
  uiPort?: number;
  /** Codec server the UI uses to show decoded payloads. */
  codecEndpoint?: string;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = ensureTemporalCli();
  const ip = opts.ip ?? '127.0.0.1';
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: cli ? { type: 'existing-path', path: cli } : undefined,
      ip,
      port: opts.port,
      dbFilename: opts.dbFilename,
      ui: opts.uiPort !== undefined,
      uiPort: opts.uiPort,
      searchAttributes: [...SEARCH_ATTRIBUTES],
      extraArgs: opts.codecEndpoint ? ['--ui-codec-endpoint', opts.codecEndpoint] : [],
    },
  });
  return {
    address: env.address,
    uiUrl: opts.uiPort !== undefined ? `http://${ip}:${opts.uiPort}` : undefined,
    stop: () => env.teardown(),
  };
}
