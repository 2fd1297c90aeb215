// What `opsflow sandbox up` writes for the worker and the person: sandbox/inventory.yaml (environment `sandbox`,
// the three web nodes and the `web` service behind HAProxy) and examples/sandbox/<workflow>[.<variant>].json, an
// input ready to run against it for each workflow the sandbox can run.
import path from 'node:path';
import { stringify } from 'yaml';
import type { Fleet } from './fleet';
import { WEBAPP_DIR } from './paths';
import { GIT_URL, SANDBOX, SANDBOX_FILES } from './layout';

export function sandboxInventory(fleet: Fleet): string {
  const hosts = Object.fromEntries(
    fleet.hosts.map((h, i) => [
      SANDBOX.nodes[i],
      // The nodes share one home (as NFS homes do), so each one's files are under its own directory.
      { address: h.address, bootIdFile: path.join(h.dir, 'boot_id'), vars: { root: path.join(h.dir, 'root'), web: path.join(h.dir, 'root', 'web') } },
    ]),
  );
  const web = {
    nodes: SANDBOX.nodes,
    blue: SANDBOX.nodes[0],
    release: {
      root: '{web}/deploys',
      live: '{web}/current',
      restart: ['sh', path.join(WEBAPP_DIR, 'ctl.sh'), '{live}', '{address}', String(SANDBOX.appPort), '{web}'],
      smoke: ['python3', '-c', 'import ast; ast.parse(open("app.py").read())'],
      keep: 3,
    },
    health: { url: `http://{address}:${SANDBOX.appPort}/health`, timeout: '4s' },
    haproxy: { backend: SANDBOX.backend, socket: SANDBOX_FILES.haproxySocket, drainTimeout: '10s' },
  };
  return `# Written by \`opsflow sandbox up\`: the sandbox's web nodes on loopback. Rewritten at every \`up\`.\n${stringify({
    knownHosts: fleet.knownHostsFile,
    defaults: { user: fleet.user, port: SANDBOX.sshPort, identityFile: fleet.identityFile },
    environments: { sandbox: { hosts, groups: { web: SANDBOX.nodes }, services: { web } } },
  }, { aliasDuplicateObjects: false })}`;
}

const release = (id: string) => ({ id, git: { repo: GIT_URL, ref: id } });

/** File name → input. `<workflow>.json`, or `<workflow>.<variant>.json` for a second input of the same workflow. */
export function sandboxExamples(): Record<string, unknown> {
  const [, good, broken] = SANDBOX.releases.map(([name]) => name);
  return {
    'fleetRun.json': { environment: 'sandbox', target: { group: 'web' }, command: ['uname', '-n'], approval: { timeout: '1h' } },
    'blueGreenDeploy.json': { environment: 'sandbox', service: 'web', release: release(good), promote: { timeout: '1h' } },
    'blueGreenDeploy.broken.json': { environment: 'sandbox', service: 'web', release: release(broken) },
    'rollbackRelease.json': { environment: 'sandbox', service: 'web' },
    'rollingUpgrade.json': {
      environment: 'sandbox',
      order: SANDBOX.nodes,
      rollbackPlan: 'nothing to undo: this upgrade only prints the kernel release and the uptime',
      upgrade: { command: ['sh', '-c', 'uname -r; uptime'], sudo: false, timeout: '1m' },
      checks: [{ kind: 'http', url: `http://{address}:${SANDBOX.appPort}/health` }],
      approval: { timeout: '1h' },
    },
  };
}
