// Where the sandbox's pieces are. They run files of the checkout itself (the test fleet's script, the demo web app),
// so paths start from the project root, found by walking up: this module runs from src/sandbox (tsx) and from
// dist/src/sandbox (the compiled CLI).
import { existsSync } from 'node:fs';
import path from 'node:path';

function projectRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PROJECT_ROOT = projectRoot(__dirname);
export const FLEET_SCRIPT = path.join(PROJECT_ROOT, 'test/fleet/fleet.sh');
/** The demo web service: app.py (one release) and ctl.sh (its restart command). */
export const WEBAPP_DIR = path.join(PROJECT_ROOT, 'test/support/webapp');
/** The demo data application: app.py (a service on a database or a memcached pool, and its check) and ctl.sh (its restart). */
export const DATAAPP_DIR = path.join(PROJECT_ROOT, 'test/support/dataapp');

/** The program's path on PATH (or the given search path), as `command -v` finds it; undefined when absent. */
export function findOnPath(bin: string, searchPath = process.env.PATH ?? ''): string | undefined {
  return searchPath.split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, bin)).find((file) => existsSync(file));
}
