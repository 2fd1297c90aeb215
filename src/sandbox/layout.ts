// Where the sandbox's pieces live: its directory, addresses, ports and releases.
import path from 'node:path';
import type { FleetHost } from './fleet';
import { NEVER_READY } from './kwokStages';
import { DATAAPP_DIR, PROJECT_ROOT } from './paths';
import type { ReleaseSpec } from './releaseRepo';

/** Ports and addresses chosen clear of the test suite (127.0.10.x, 8080), `npm start` (7233, 8233) and a Temporal cluster (7333, 8333). */
export const SANDBOX = {
  /** OPSFLOW_SANDBOX_DIR: for the tests, which must not touch a sandbox of yours. */
  dir: path.resolve(process.env.OPSFLOW_SANDBOX_DIR ?? path.join(PROJECT_ROOT, 'sandbox')),
  nodes: ['web1', 'web2', 'web3'],
  net: 20,
  sshPort: 2200,
  appPort: 8480,
  lbPort: 8400,
  gitPort: 9420,
  backend: 'web',
  /** v1 is live after `up`; v2 is the tour's good release; v3-broken fails its health check. */
  releases: [['v1', 200], ['v2', 200], ['v3-broken', 500]] as ReleaseSpec[],
  /**
   * The hot standby (with PostgreSQL, moto and rclone installed): system `gigadb` on two infrastructures, each an
   * sshd node (the fleet's 4th and 5th host) serving its release marker on appPort, a PostgreSQL cluster, an AWS
   * account in moto; its DNS records are in moto's Route53.
   */
  standby: {
    system: 'gigadb',
    infra: [
      { name: 'hk', region: 'ap-east-1', account: 'upstream', pgPort: 5450 },
      { name: 'eu', region: 'eu-west-3', account: 'upstream-alt', pgPort: 5451 },
    ],
    motoPort: 5480,
    zone: 'gigadb.sandbox',
    records: ['gigadb.sandbox', 'files.gigadb.sandbox'],
    bucket: 'gigadb-backups',
    dbUser: 'opsflow',
    /** safeMigration's application `notes`: the demo data app on hk's node, on database `notes` of hk's cluster. */
    notesPort: 8481,
  },
  /**
   * memcachedPool: two memcached servers on loopback, the pool's (`old`, at memcached's default 64 MB) and its
   * replacement (`new`, -m 96), and the pool's clients, the demo data app on every web node at clientPort.
   */
  memcached: { old: { port: 11420, memoryMb: 64 }, new: { port: 11421, memoryMb: 96 }, clientPort: 8482 },
  /** customerRollout: each customer a service of the demo web app, in staging (web1) and production (web2, web3). */
  customers: { staging: ['web1'], production: ['web2', 'web3'], services: [['acme', 8490], ['globex', 8491]] as [string, number][] },
  /**
   * k8sDeploy's cluster (with the control plane's binaries built): etcd, kube-apiserver, kube-controller-manager,
   * kube-scheduler and KWOK, whose nodes take pods without running them; service `shop` is deployment `web` in
   * namespace `shop`. No image is pulled, so the demo image's name is only a name.
   */
  kubernetes: {
    ports: { etcd: 2479, etcdPeer: 2480, api: 6480, kwok: 6481 },
    context: 'sandbox',
    service: 'shop',
    namespace: 'shop',
    deployment: 'web',
    container: 'app',
    replicas: 3,
    image: 'registry.sandbox/shop/web',
    /** v1 runs after `up`; v2 is the good release; v3-never-ready never passes readiness (a KWOK stage). */
    releases: ['v1', 'v2', `v3${NEVER_READY}`],
  },
};

const at = (...parts: string[]) => path.join(SANDBOX.dir, ...parts);
export const SANDBOX_FILES = {
  inventory: at('inventory.yaml'),
  fleet: at('fleet'),
  git: at('git'),
  gitPid: at('git', 'daemon.pid'),
  haproxyCfg: at('haproxy', 'haproxy.cfg'),
  haproxyPid: at('haproxy', 'haproxy.pid'),
  haproxySocket: at('haproxy', 'admin.sock'),
  examples: path.join(PROJECT_ROOT, 'examples', 'sandbox'),
  postgres: (infra: string) => at('postgres', infra),
  motoPid: at('moto', 'moto.pid'),
  /** The AWS profile `sandbox` with moto's keys, readable by the worker. */
  awsCredentials: at('aws-credentials'),
  /** Each infrastructure's file store, for dataSync. */
  files: (infra: string) => at('files', infra),
  memcachedPid: (port: number) => at('memcached', `${port}.pid`),
  /** The control plane's certificates, tokens, etcd data, pid files and logs (root's). */
  kubernetes: at('kubernetes'),
  /** Its admin kubeconfig, readable by the worker. */
  kubeconfig: at('kubeconfig'),
};
export const MOTO_URL = `http://127.0.0.1:${SANDBOX.standby.motoPort}`;
/** The web nodes are the fleet's first hosts; the standby's infrastructures, when there, the next ones. */
export const webHosts = (hosts: FleetHost[]) => hosts.slice(0, SANDBOX.nodes.length);
/** The web nodes with their names (web1..), which the inventory gives them. */
export const namedWebHosts = (hosts: FleetHost[]) => webHosts(hosts).map((h, i): [string, FleetHost] => [SANDBOX.nodes[i], h]);
export const standbyHosts = (hosts: FleetHost[]) => hosts.slice(SANDBOX.nodes.length, SANDBOX.nodes.length + SANDBOX.standby.infra.length);
/** An infrastructure node's directory served on appPort: release.txt (what the deploy wrote) and healthy. */
export const markerDir = (host: FleetHost) => path.join(host.dir, 'root', 'gigadb');
/** The notes application's directory on its node: config.json, its pid file and log, its read-only flag. */
export const notesDir = (host: FleetHost) => path.join(host.dir, 'root', 'notes');
/** The notes application's restart command: `up` starts it so, and the inventory gives it to safeMigration. */
export const notesRestart = (host: FleetHost) => ['sh', path.join(DATAAPP_DIR, 'ctl.sh'), notesDir(host), host.address, String(SANDBOX.standby.notesPort)];
/** The demo image of a release of the sandbox's Kubernetes service. */
export const k8sImage = (release: string) => `${SANDBOX.kubernetes.image}:${release}`;
export const GIT_URL = `git://127.0.0.1:${SANDBOX.gitPort}/app.git`;
export const LB_URL = `http://127.0.0.1:${SANDBOX.lbPort}/`;

/** The node's web service directory: its releases, the live symlink, the app's pid file and log. */
export const webDir = (host: FleetHost) => path.join(host.dir, 'root', 'web');
/** The memcached pool's client on the node: its pool file config.json, pid file and log. */
export const cacheDir = (host: FleetHost) => path.join(host.dir, 'root', 'cache');
/** Where the node's customers live, one directory each, laid out as webDir. */
export const customersDir = (host: FleetHost) => path.join(host.dir, 'root', 'customers');
