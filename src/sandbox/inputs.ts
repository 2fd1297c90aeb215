// What `opsflow sandbox up` writes for the worker and the person: sandbox/inventory.yaml (environment `sandbox`,
// the three web nodes and the `web` service behind HAProxy; environments `staging` and `production` of the same
// nodes, with the customers as services) and examples/sandbox/<workflow>[.<variant>].json, an
// input ready to run against it for each workflow the sandbox can run.
import path from 'node:path';
import { stringify } from 'yaml';
import type { Fleet, FleetHost } from './fleet';
import { DATAAPP_DIR, WEBAPP_DIR } from './paths';
import { memcachedServer } from './memcached';
import { cacheDir, customersDir, GIT_URL, k8sImage, markerDir, MOTO_URL, notesDir, notesRestart, SANDBOX, SANDBOX_FILES, standbyHosts, webDir, webHosts } from './layout';

/** The hot standby's part of the inventory: an environment per infrastructure, and system gigadb. */
function standbyInventory(hosts: FleetHost[], zoneId: string) {
  const S = SANDBOX.standby;
  const host = (i: number) => hosts[i];
  const marker = (i: number) => `http://${host(i).address}:${SANDBOX.appPort}`;
  const infra = (i: number) => ({
    aws: S.infra[i].account,
    environment: S.infra[i].name,
    database: `db-${S.infra[i].name}`,
    files: SANDBOX_FILES.files(S.infra[i].name),
    url: `${marker(i)}/`,
    addresses: Object.fromEntries(S.records.map((n) => [n, { eip: `eip-${n}` }])),
    maintenance: { on: { host: 'web', command: ['touch', path.join(markerDir(host(i)), 'maintenance')] }, off: { host: 'web', command: ['rm', '-f', path.join(markerDir(host(i)), 'maintenance')] } },
    // The release id arrives as one argument ($1), never as shell text.
    deploy: { host: 'web', command: ['sh', '-c', 'printf %s "$1" > "$2"', 'deploy', '{release}', path.join(markerDir(host(i)), 'release.txt')] },
    checks: [{ url: `${marker(i)}/release.txt`, body: '{release}' }, { url: `${marker(i)}/healthy` }],
  });
  return {
    environments: Object.fromEntries(S.infra.map((inf, i) => [inf.name, { hosts: { web: { address: host(i).address } } }])),
    aws: Object.fromEntries(S.infra.map((inf) => [inf.account, { region: inf.region, endpoint: MOTO_URL, profile: 'sandbox', credentialsFile: SANDBOX_FILES.awsCredentials }])),
    // Trust on loopback: the sandbox's clusters have no password to hand around.
    databases: {
      ...Object.fromEntries(
        S.infra.map((inf) => [`db-${inf.name}`, { host: '127.0.0.1', port: inf.pgPort, database: 'gigadb', user: S.dbUser, checks: [{ name: 'datasets', sql: 'SELECT count(*) > 0 FROM datasets', expect: 't' }] }]),
      ),
      'db-notes': { host: '127.0.0.1', port: S.infra[0].pgPort, database: 'notes', user: S.dbUser, checks: [{ name: 'has-notes', sql: 'SELECT count(*) > 0 FROM notes', expect: 't' }] },
    },
    applications: { notes: notesApplication(host(0)) },
    systems: {
      [S.system]: {
        timezone: 'UTC',
        roles: { production: S.infra[0].name, standby: S.infra[1].name },
        infrastructures: Object.fromEntries(S.infra.map((inf, i) => [inf.name, infra(i)])),
        dns: { provider: 'route53', account: S.infra[0].account, zoneId, ttl: 60 },
        backups: { account: S.infra[0].account, bucket: S.bucket, prefix: 'db/' },
        schedules: { files: '0 2 * * *', database: '30 2 * * *' },
      },
    },
  };
}

/** safeMigration's application: the notes app on hk's node (its read-only flag, restart and check). */
function notesApplication(host: FleetHost) {
  const flag = path.join(notesDir(host), 'READONLY');
  const on = (command: string[]) => ({ host: 'web', command });
  return {
    environment: SANDBOX.standby.infra[0].name,
    database: 'db-notes',
    readOnly: { on: on(['touch', flag]), off: on(['rm', '-f', flag]) },
    restart: [on(notesRestart(host))],
    check: on(['python3', path.join(DATAAPP_DIR, 'app.py'), 'check', `http://${host.address}:${SANDBOX.standby.notesPort}`, 'notes', 'notes']),
  };
}

/** The inventory's kubernetes section of environment `sandbox`: service `shop`, watched briefly after a rollout. */
function kubernetesInventory() {
  const K = SANDBOX.kubernetes;
  return {
    kubeconfig: SANDBOX_FILES.kubeconfig,
    context: K.context,
    services: {
      [K.service]: {
        namespace: K.namespace,
        deployments: [{ name: K.deployment, containers: [K.container] }],
        rolloutTimeout: '2m',
        watch: { period: '10s', interval: '2s', notReadyGrace: '10s' },
      },
    },
  };
}

/**
 * With `standby`, the hot standby's infrastructures (the fleet's hosts after the web nodes) and its zone in moto;
 * with `kubernetes`, the Kubernetes cluster.
 */
export function sandboxInventory(fleet: Fleet, standby?: { zoneId: string }, kubernetes = false): string {
  const hosts = Object.fromEntries(
    webHosts(fleet.hosts).map((h, i) => [
      SANDBOX.nodes[i],
      // The nodes share one home (as NFS homes do), so each one's files are under its own directory. `dataapp`
      // is the checkout's demo data app, which memcachedPool's input restarts as `{dataapp}/ctl.sh`.
      {
        address: h.address,
        bootIdFile: path.join(h.dir, 'boot_id'),
        vars: { root: path.join(h.dir, 'root'), web: webDir(h), cache: cacheDir(h), customers: customersDir(h), dataapp: DATAAPP_DIR },
      },
    ]),
  );
  const web = { ...appService(SANDBOX.nodes, '{web}', SANDBOX.appPort), haproxy: { backend: SANDBOX.backend, socket: SANDBOX_FILES.haproxySocket, drainTimeout: '10s' } };
  const C = SANDBOX.customers;
  // customerRollout's: the same nodes in two more environments, each customer a service in both.
  const stage = (nodes: string[]) => ({
    hosts: Object.fromEntries(nodes.map((n) => [n, hosts[n]])),
    services: Object.fromEntries(C.services.map(([customer, port]) => [customer, appService(nodes, `{customers}/${customer}`, port)])),
  });
  const { environments, ...sections } = standby ? standbyInventory(standbyHosts(fleet.hosts), standby.zoneId) : { environments: {} };
  return `# Written by \`opsflow sandbox up\`: the sandbox's web nodes on loopback. Rewritten at every \`up\`.\n${stringify({
    knownHosts: fleet.knownHostsFile,
    defaults: { user: fleet.user, port: SANDBOX.sshPort, identityFile: fleet.identityFile },
    environments: {
      sandbox: { hosts, groups: { web: SANDBOX.nodes }, services: { web }, ...(kubernetes ? { kubernetes: kubernetesInventory() } : {}) },
      staging: stage(C.staging),
      production: stage(C.production),
      ...environments,
    },
    ...sections,
  }, { aliasDuplicateObjects: false })}`;
}

/** A service of the demo web app on `nodes` (the first is blue), its releases under `dir`, listening on `port`. */
function appService(nodes: string[], dir: string, port: number) {
  return {
    nodes,
    blue: nodes[0],
    release: {
      root: `${dir}/deploys`,
      live: `${dir}/current`,
      restart: ['sh', path.join(WEBAPP_DIR, 'ctl.sh'), '{live}', '{address}', String(port), dir],
      smoke: ['python3', '-c', 'import ast; ast.parse(open("app.py").read())'],
      keep: 3,
    },
    health: { url: `http://{address}:${port}/health`, timeout: '4s' },
  };
}

const release = (id: string) => ({ id, git: { repo: GIT_URL, ref: id } });

/** The hot standby's inputs: the release through its DNS swap, the nightly sync, a backup, its restore, pruning, a pause of the nightly syncs. */
function standbyExamples(): Record<string, unknown> {
  const system = SANDBOX.standby.system;
  const key = '202601010000';
  return {
    'hotStandbyRelease.json': { system, release: 'v2', kind: 'complex', validation: { timeout: '1h' } },
    'dataSync.json': { system, stores: ['files', 'database'] },
    'backupDatabase.json': { system, manual: true, key },
    'restoreDatabase.json': { system, key },
    'pruneBackups.json': { system },
    // Short, so that trying it shows the schedules paused (`opsflow schedule list`) and resumed within a minute.
    'pauseDataSync.json': { system, reason: 'trying pauseDataSync in the sandbox', for: '30s' },
    'safeMigration.json': {
      application: 'notes',
      migration: { id: 'author', commands: [['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'ALTER TABLE notes ADD COLUMN author text']] },
      backupDir: '/tmp',
    },
  };
}

/**
 * File name → input. `<workflow>.json`, or `<workflow>.<variant>.json` for a second input of the same workflow.
 * All of them every time: the hot standby's stay valid, and run once `up` has the packages to build it.
 */
export function sandboxExamples(): Record<string, unknown> {
  return { ...webExamples(), ...standbyExamples(), ...kubernetesExamples() };
}

/** k8sDeploy's: v2 through its promote gate, and v3-never-ready, which never rolls out and is rolled back. */
function kubernetesExamples(): Record<string, unknown> {
  const { service, releases } = SANDBOX.kubernetes;
  const [, good, broken] = releases;
  return {
    'k8sDeploy.json': { environment: 'sandbox', service, image: k8sImage(good), promote: { timeout: '1h' } },
    'k8sDeploy.broken.json': { environment: 'sandbox', service, image: k8sImage(broken) },
  };
}

function webExamples(): Record<string, unknown> {
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
    'memcachedPool.json': memcachedPoolExample(),
    'customerRollout.json': { release: release(good), customers: SANDBOX.customers.services.map(([customer]) => customer), promote: { timeout: '1h' } },
  };
}

/**
 * The pool's server replaced by the new one on every web node's client: `{cache}` and `{dataapp}` are the nodes'
 * inventory vars, so the input names no path of this checkout. verify writes a key through the client and reads
 * it back.
 */
function memcachedPoolExample() {
  const M = SANDBOX.memcached;
  const client = `http://{address}:${M.clientPort}`;
  return {
    environment: 'sandbox',
    newServers: [{ host: '127.0.0.1', port: M.new.port, version: { atLeast: '1.6' }, memoryLimitMb: M.new.memoryMb }],
    pool: [memcachedServer(M.new)],
    clients: SANDBOX.nodes,
    config: { path: '{cache}/config.json', content: '{"memcached": {servers}}\n' },
    restart: ['sh', '{dataapp}/ctl.sh', '{cache}', '{address}', String(M.clientPort)],
    sudo: false,
    verify: ['sh', '-c', 'k=opsflow-check-$$; curl -fsS --data-binary "$k" "$1/cache/$k" >/dev/null && test "$(curl -fsS "$1/cache/$k")" = "$k"', 'verify', client],
    rollbackPlan: "put config.json.opsflow-previous back in each client's cache directory and restart it (an abort or a cancel does it)",
    approval: { timeout: '1h' },
  };
}
