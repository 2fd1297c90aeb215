// The demo apps on the sandbox's nodes, each in a directory of its own holding its pid file and log (the layout of
// test/support/restart.sh): the web app (the `web` service and each customer's), which serves a release installed
// and switched with the workflows' own scripts, and the data app (the notes application, the memcached pool's
// clients), which loads its configuration file at start. They run as the nodes' SSH user, as the workflows'
// restarts run them.
import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { INSTALL, SWITCH } from '../activities/release';
import { fleetHome, FLEET_USER } from './fleet';
import { GIT_URL, SANDBOX } from './layout';
import { WEBAPP_DIR } from './paths';
import { livePid, stopPid } from './processes';

export const appPidFile = (dir: string) => path.join(dir, 'app.pid');
/** The pid of the app of `dir`, when it runs. */
export const appPid = (dir: string) => livePid(appPidFile(dir), 'app.py');

/** Runs argv as the nodes' SSH user, as the workflows' commands run on them. */
function asFleetUser(argv: string[], cwd?: string): string {
  return execFileSync('runuser', ['-u', FLEET_USER, '--', ...argv], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: fleetHome() }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

/** The release `dir`'s live symlink points at, or 'none'. */
export function liveRelease(dir: string): string {
  const live = path.join(dir, 'current');
  return existsSync(live) ? path.basename(readlinkSync(live)) : 'none';
}

/**
 * Puts v1 live in `dir` when it has no release yet, with the install and switch scripts the workflows run, and
 * (re)starts the app of whatever release is live there when it is not running (after `down`, say).
 */
export function ensureWebApp(dir: string, address: string, port: number): void {
  execFileSync('install', ['-d', '-o', FLEET_USER, dir]);
  const live = path.join(dir, 'current');
  if (!existsSync(live)) {
    const [first] = SANDBOX.releases[0];
    asFleetUser(['sh', '-c', INSTALL, 'opsflow', path.join(dir, 'deploys'), first, 'git', GIT_URL, first]);
    asFleetUser(['sh', '-c', SWITCH, 'opsflow', live, path.join(dir, 'deploys', first)]);
  }
  if (!appPid(dir)) asFleetUser(['sh', path.join(WEBAPP_DIR, 'ctl.sh'), live, address, String(port), dir], dir);
}

/**
 * `dir` and its `files`, the nodes' user's, each written only where absent: once there, they are state that runs
 * change (a pool file, a release marker).
 */
export function ensureNodeFiles(dir: string, files: Record<string, string>, mode = 0o644): void {
  execFileSync('install', ['-d', '-o', FLEET_USER, dir]);
  for (const [file, content] of Object.entries(files)) {
    if (existsSync(path.join(dir, file))) continue;
    writeFileSync(path.join(dir, file), content, { mode });
    execFileSync('chown', [FLEET_USER, path.join(dir, file)]);
  }
}

/**
 * The data app in `dir`: its configuration `files` (ensureNodeFiles; only the nodes' user reads them, unless `mode`
 * says otherwise), and the app started with `restart` unless it runs.
 */
export function ensureDataApp(dir: string, files: Record<string, string>, restart: string[], mode = 0o600): void {
  ensureNodeFiles(dir, files, mode);
  if (!appPid(dir)) asFleetUser(restart, dir);
}

/** Stops the app of `dir`; whether it ran. */
export async function stopApp(dir: string): Promise<boolean> {
  const pid = appPid(dir);
  if (pid) await stopPid(pid);
  return pid !== undefined;
}
