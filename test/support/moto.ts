// The AWS API emulator (moto_server, PyPI moto[server]) on loopback. The code under test reaches it only through
// the inventory's `endpoint` setting: the same AWS SDK calls as against AWS itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort, waitFor } from './harness';

export interface TestMoto {
  endpoint: string;
  /** Static credentials moto accepts; tests export them under the names the inventory declares. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): void;
}

function motoCommand(): string {
  const found = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error("moto_server not found: pip install 'moto[server]' (scripts/setup.sh test does it)");
  return found;
}

export async function startMoto(): Promise<TestMoto> {
  const port = await freePort();
  const child: ChildProcess = spawn(motoCommand(), ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${stderr}`);
      try {
        return (await fetch(`${endpoint}/moto-api/`)).ok;
      } catch {
        return false;
      }
    },
    'moto_server to listen',
    60_000,
    200,
  );
  return {
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}
