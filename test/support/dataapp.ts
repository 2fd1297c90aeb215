// The test application (test/support/dataapp/app.py) running on a fleet host as the fleet's user, as a service
// runs on its machine: its directory holds config.json, its pid file and log; ctl.sh is its restart command.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DATAAPP_DIR } from '../../src/sandbox/paths';
import { FLEET_USER } from './fleet';
import { fleet, freePort } from './harness';

export const APP_PY = path.join(DATAAPP_DIR, 'app.py');
export const APP_CTL = path.join(DATAAPP_DIR, 'ctl.sh');

export interface DataApp {
  node: string;
  address: string;
  port: number;
  dir: string;
  url: string;
  config(): Record<string, unknown>;
  get(p: string): Promise<{ status: number; text: string }>;
  post(p: string, body: string): Promise<{ status: number; text: string }>;
  stop(): void;
}

/** The app's directory on every node, with `{node}` where the node's name goes (as workflow inputs write it). */
export const appDirTemplate = (name: string) => path.join(fleet().dir, 'hosts', '{node}', 'root', name);

/** Starts the app on `node` (address from the fleet) under `name` in the host's directory, with this config. */
export async function startDataApp(node: string, name: string, config: Record<string, unknown>, opts: { port?: number; files?: Record<string, string> } = {}): Promise<DataApp> {
  const host = fleet().hosts.find((h) => h.name === node);
  if (!host) throw new Error(`no fleet host ${node}`);
  const dir = appDirTemplate(name).replace('{node}', node);
  execFileSync('install', ['-d', '-o', FLEET_USER, dir]);
  for (const [file, content] of Object.entries({ ...opts.files, 'config.json': `${JSON.stringify(config)}\n` })) {
    writeFileSync(path.join(dir, file), content, { mode: 0o600 });
    execFileSync('chown', [FLEET_USER, path.join(dir, file)]);
  }
  const appPort = opts.port ?? (await freePort());
  execFileSync('runuser', ['-u', FLEET_USER, '--', 'sh', APP_CTL, dir, host.address, String(appPort)], { stdio: 'ignore', timeout: 30_000 });
  const url = `http://${host.address}:${appPort}`;
  const call = async (method: string, p: string, body?: string) => {
    const res = await fetch(`${url}${p}`, { method, body, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, text: await res.text() };
  };
  return {
    node,
    address: host.address,
    port: appPort,
    dir,
    url,
    config: () => JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')),
    get: (p) => call('GET', p),
    post: (p, body) => call('POST', p, body),
    stop() {
      try {
        process.kill(Number(readFileSync(path.join(dir, 'app.pid'), 'utf8')), 'SIGTERM');
      } catch {
        // already gone
      }
    },
  };
}
