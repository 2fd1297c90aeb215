// Where the `temporal` CLI (dev server + Web UI) comes from. A user with internet gets the SDK's normal
// download; machines that reach only package registries build it from the Go module proxy once.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { log } from '../common/log';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function goBin(): string | undefined {
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
    return gopath ? path.join(gopath, 'bin', 'temporal') : undefined;
  } catch {
    return undefined;
  }
}

/** `TEMPORAL_CLI_PATH`, then `PATH`, then `$(go env GOPATH)/bin`. */
export function findTemporalCli(): string | undefined {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new Error(`TEMPORAL_CLI_PATH=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && executable(path.join(dir, 'temporal'))) return path.join(dir, 'temporal');
  }
  const fromGo = goBin();
  return fromGo && executable(fromGo) ? fromGo : undefined;
}

/**
 * The CLI to run, building it with Go when it is nowhere to be found; undefined means "let the SDK download
 * it" (no Go here either).
 */
export function ensureTemporalCli(): string | undefined {
  const found = findTemporalCli();
  if (found) return found;
  const target = goBin();
  if (!target) return undefined;
  log.info({ module: TEMPORAL_CLI_MODULE }, 'temporal CLI not found: building it with go install (a few minutes, once)');
  execFileSync('go', ['install', TEMPORAL_CLI_MODULE], { stdio: ['ignore', 'inherit', 'inherit'] });
  return target;
}
