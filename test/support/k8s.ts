// A real Kubernetes control plane on loopback for the k8sDeploy tests (src/sandbox/controlPlane.ts): one per test
// file, in a temporary directory, on free ports, its logs in test/artifacts/. KWOK's stages make an image tagged
// …-never-ready never ready and one tagged …-crashloop crash-loop (src/sandbox/kwokStages.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { killControlPlane, startControlPlane as start, stopControlPlane, type ControlPlane as Plane } from '../../src/sandbox/controlPlane';
import { freePort, ROOT } from './harness';

export { CRASHLOOP, NEVER_READY } from '../../src/sandbox/kwokStages';

export interface ControlPlane extends Plane {
  stop(): Promise<void>;
}

export async function startControlPlane(opts: { context?: string; nodes?: number } = {}): Promise<ControlPlane> {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-k8s-'));
  const ports = { etcd: await freePort(), etcdPeer: await freePort(), api: await freePort(), kwok: await freePort() };
  // The components are this process's children: they go when it goes, however the test ends.
  const kill = () => killControlPlane(dir);
  process.once('exit', kill);
  const cp = await start({ dir, ports, context: opts.context ?? 'opsflow-test', nodes: opts.nodes ?? 1, logs: path.join(ROOT, 'test/artifacts', `k8s-${path.basename(dir)}`) });
  return {
    ...cp,
    async stop() {
      process.removeListener('exit', kill);
      await stopControlPlane(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
