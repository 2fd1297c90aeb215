// The AWS API emulator (moto_server, PyPI moto[server]) on loopback: one per test file that needs it, and the
// sandbox's for good. The code under test reaches it only through the inventory's `endpoint` setting: the same
// AWS SDK calls as against AWS itself.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { findOnPath } from './paths';

/** moto accepts any keys; these are the conventional ones. */
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** Starts moto_server on 127.0.0.1:port; `detached` outlives this process (the sandbox's, stopped by pid). */
export function spawnMoto(port: number, opts: { detached?: boolean; stdio?: StdioOptions } = {}): ChildProcess {
  const bin = findOnPath('moto_server');
  if (!bin) throw new Error("moto_server not found: pip install 'moto[server]' (scripts/setup.sh test does it)");
  return spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], { detached: opts.detached, stdio: opts.stdio ?? ['ignore', 'ignore', 'pipe'] });
}

/** Whether moto answers at the endpoint. */
export async function motoReady(endpoint: string): Promise<boolean> {
  try {
    return (await fetch(`${endpoint}/moto-api/`)).ok;
  } catch {
    return false;
  }
}
