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
