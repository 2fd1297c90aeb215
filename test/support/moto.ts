// moto_server for a test file (src/sandbox/moto.ts), on a free port, stopped with the file.
import type { ChildProcess } from 'node:child_process';
import { MOTO_CREDENTIALS, motoReady, spawnMoto } from '../../src/sandbox/moto';
import { freePort, waitFor } from './harness';

export interface TestMoto {
  endpoint: string;
  /** Static credentials moto accepts; tests export them under the names the inventory declares. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): void;
}

export async function startMoto(): Promise<TestMoto> {
  const port = await freePort();
  const child: ChildProcess = spawnMoto(port);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${stderr}`);
      return motoReady(endpoint);
    },
    'moto_server to listen',
    60_000,
    200,
  );
  return {
    endpoint,
    credentials: { ...MOTO_CREDENTIALS },
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}
