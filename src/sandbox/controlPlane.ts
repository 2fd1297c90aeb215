// A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// built from the Go module proxy (scripts/k8s-binaries.sh), and KWOK standing in for kubelets: its nodes take pods
// and its stages (./kwokStages.ts) move them through their states without running containers. Certificates,
// tokens and kubeconfigs are generated in the control plane's directory; every server binds 127.0.0.1.
// The k8sDeploy tests start one per test file, in a temporary directory; the sandbox keeps one for good. Each
// component has a pid file in the directory, so it is found again, and stopped, by another process than the one
// that started it.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { KWOK_STAGES } from './kwokStages';
import { PROJECT_ROOT } from './paths';
import { livePid, stopPid, until } from './processes';

export const K8S_BINARIES_SCRIPT = path.join(PROJECT_ROOT, 'scripts/k8s-binaries.sh');
/** In the order they start; they stop in the reverse. */
const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
type Component = (typeof COMPONENTS)[number];

/** Where scripts/k8s-binaries.sh puts (or would put) the binaries. */
export function k8sBinDir(): string {
  return execFileSync('bash', [K8S_BINARIES_SCRIPT, '--bin-dir'], { encoding: 'utf8' }).trim();
}

/** The control plane's binaries that are not in `binDir`. */
export function missingBinaries(binDir = k8sBinDir()): string[] {
  return COMPONENTS.filter((b) => !existsSync(path.join(binDir, b)));
}

export interface ControlPlanePorts {
  etcd: number;
  etcdPeer: number;
  api: number;
  kwok: number;
}

export interface ControlPlaneOptions {
  /** Its certificates, tokens, kubeconfigs, etcd data and pid files. */
  dir: string;
  ports: ControlPlanePorts;
  /** The admin kubeconfig's context. */
  context: string;
  /** KWOK nodes to register. */
  nodes: number;
  /** Where the components' logs go (default: `dir`). */
  logs?: string;
  /** Components in their own process group, so that they outlive the command that started them (the sandbox's). */
  detached?: boolean;
}

export class KubernetesApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ControlPlane {
  /** An admin kubeconfig, its context named `context`. */
  kubeconfig: string;
  context: string;
  server: string;
  /** A call to the API server as the admin; JSON in and out. */
  api<T = Record<string, unknown>>(method: string, urlPath: string, body?: unknown, contentType?: string): Promise<T>;
  /** Whether the API server says it is ready (/readyz). */
  ready(): Promise<boolean>;
}

const pidFile = (dir: string, name: Component) => path.join(dir, `${name}.pid`);
export const controlPlanePidFiles = (dir: string) => COMPONENTS.map((c) => pidFile(dir, c));
/** A component's pid, if it runs from this directory (its command line names a file in it). */
const componentPid = (dir: string, name: Component) => livePid(pidFile(dir, name), dir);

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/**
 * A CA, the API server's serving certificate for 127.0.0.1, and the service-account signing key pair. Valid for
 * years: the sandbox keeps them across restarts.
 */
function certificates(dir: string): void {
  const days = '3650';
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', days, '-subj', '/CN=opsflow-k8s-ca');
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver');
  writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes.default.svc\n');
  openssl(dir, 'x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', days, '-extfile', 'san.cnf');
  openssl(dir, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key');
  openssl(dir, 'ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
}

function kubeconfig(server: string, ca: string, token: string, context: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'opsflow', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
    users: [{ name: context, user: { token } }],
    contexts: [{ name: context, context: { cluster: 'opsflow', user: context } }],
    'current-context': context,
  });
}

const kubeconfigFile = (dir: string, who: string) => path.join(dir, `${who}.kubeconfig`);

/** Certificates, tokens, kubeconfigs and KWOK's stages, once: a directory that has them keeps them. */
function prepare(dir: string, server: string, context: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(dir, 'kwok.yaml'), KWOK_STAGES);
  if (existsSync(kubeconfigFile(dir, 'admin'))) return;
  certificates(dir);
  const ca = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
  const tokens = Object.fromEntries(['admin', 'kcm', 'scheduler', 'kwok'].map((who) => [who, randomBytes(24).toString('hex')]));
  // The components authenticate with static tokens; system:masters spares them an RBAC setup.
  writeFileSync(
    path.join(dir, 'tokens.csv'),
    [
      `${tokens.admin},opsflow-admin,1,"system:masters"`,
      `${tokens.kcm},system:kube-controller-manager,2,"system:masters"`,
      `${tokens.scheduler},system:kube-scheduler,3,"system:masters"`,
      `${tokens.kwok},kwok,4,"system:masters"`,
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  // The admin's last: its presence says the directory is complete.
  for (const who of ['kcm', 'scheduler', 'kwok', 'admin']) writeFileSync(kubeconfigFile(dir, who), kubeconfig(server, ca, tokens[who], who === 'admin' ? context : who), { mode: 0o600 });
}

function componentArgs(name: Component, dir: string, ports: ControlPlanePorts): string[] {
  const etcd = `http://127.0.0.1:${ports.etcd}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  switch (name) {
    case 'etcd':
      return [
        '--name=opsflow',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcd}`,
        `--advertise-client-urls=${etcd}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=opsflow=${peer}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ];
    case 'kube-apiserver':
      return [
        `--etcd-servers=${etcd}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${ports.api}`,
        `--cert-dir=${path.join(dir, 'certs')}`,
        `--tls-cert-file=${path.join(dir, 'apiserver.crt')}`,
        `--tls-private-key-file=${path.join(dir, 'apiserver.key')}`,
        `--client-ca-file=${path.join(dir, 'ca.crt')}`,
        `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        // KWOK's pods mount no tokens, so nothing waits for service accounts; and with no node lifecycle controller
        // to lift it, the not-ready taint a new node gets would keep every pod off the KWOK nodes.
        '--disable-admission-plugins=ServiceAccount,TaintNodesByCondition',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
      ];
    case 'kube-controller-manager':
      return [
        `--kubeconfig=${kubeconfigFile(dir, 'kcm')}`,
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        '--leader-elect=false',
        '--controllers=deployment-controller,replicaset-controller,garbage-collector-controller',
        '--profiling=false',
      ];
    case 'kube-scheduler':
      return [`--kubeconfig=${kubeconfigFile(dir, 'scheduler')}`, '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false', '--profiling=false'];
    case 'kwok':
      return [`--kubeconfig=${kubeconfigFile(dir, 'kwok')}`, `--config=${path.join(dir, 'kwok.yaml')}`, '--manage-all-nodes=true', `--server-address=127.0.0.1:${ports.kwok}`];
  }
}

/** The admin's view of the control plane in `dir`, from its kubeconfig. */
export function openControlPlane(dir: string): ControlPlane {
  const file = kubeconfigFile(dir, 'admin');
  const config = parse(readFileSync(file, 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority-data': string } }[]; users: { user: { token: string } }[]; 'current-context': string };
  const { server, 'certificate-authority-data': caData } = config.clusters[0].cluster;
  const ca = Buffer.from(caData, 'base64').toString();
  const token = config.users[0].user.token;
  const request = (method: string, urlPath: string, body?: unknown, contentType = 'application/json') =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(`${server}${urlPath}`, { method, ca, headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': contentType }) }, timeout: 10_000 }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  const api = async <T>(method: string, urlPath: string, body?: unknown, contentType?: string): Promise<T> => {
    const { status, text } = await request(method, urlPath, body, contentType);
    if (status >= 400) throw new KubernetesApiError(`${method} ${urlPath}: HTTP ${status} ${text.slice(0, 500)}`, status);
    return (text ? JSON.parse(text) : {}) as T;
  };
  const ready = async () => (await request('GET', '/readyz').catch(() => ({ status: 0 }))).status === 200;
  return { kubeconfig: file, context: config['current-context'], server, api, ready };
}

/** Creates the object unless it exists (409): what `up` creates survives a restart, in etcd. */
export async function ensureObject(cp: ControlPlane, collection: string, body: unknown): Promise<void> {
  await cp.api('POST', collection, body).catch((err: unknown) => {
    if (!(err instanceof KubernetesApiError && err.status === 409)) throw err;
  });
}

/**
 * Starts the components that do not run (all of them in a fresh directory), registers the KWOK nodes, and waits
 * until the nodes are ready. A component that exits meanwhile fails it, naming its log.
 */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const bin = k8sBinDir();
  const missing = missingBinaries(bin);
  if (missing.length) throw new Error(`missing ${missing.join(', ')} in ${bin}: run bash scripts/k8s-binaries.sh (scripts/setup.sh test does)`);
  const { dir, ports } = opts;
  const logs = opts.logs ?? dir;
  prepare(dir, `https://127.0.0.1:${ports.api}`, opts.context);
  mkdirSync(logs, { recursive: true });
  const cp = openControlPlane(dir);
  const started: Component[] = [];
  const alive = () => {
    for (const name of started) if (!componentPid(dir, name)) throw new Error(`${name} exited: see ${path.join(logs, `${name}.log`)}`);
  };
  const run = (name: Component) => {
    if (componentPid(dir, name)) return;
    const log = openSync(path.join(logs, `${name}.log`), 'a');
    const child = spawn(path.join(bin, name), componentArgs(name, dir, ports), { cwd: dir, detached: opts.detached, stdio: ['ignore', log, log] });
    closeSync(log);
    if (opts.detached) child.unref();
    writeFileSync(pidFile(dir, name), `${child.pid}\n`);
    started.push(name);
  };
  /** Until `ready` says so, failing early when a component started here exits. */
  const waitUntil = (what: string, ready: () => Promise<boolean>, timeoutMs: number) =>
    until(what, async () => {
      alive();
      return ready().catch(() => false);
    }, timeoutMs);
  try {
    run('etcd');
    await waitUntil('etcd', async () => (await fetch(`http://127.0.0.1:${ports.etcd}/health`)).ok, 60_000);
    run('kube-apiserver');
    await waitUntil('kube-apiserver', cp.ready, 120_000);
    for (const name of ['kube-controller-manager', 'kube-scheduler', 'kwok'] as const) run(name);
    for (let i = 0; i < opts.nodes; i++) {
      await ensureObject(cp, '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: `kwok-node-${i}`, labels: { type: 'kwok' } } });
    }
    await waitUntil('KWOK nodes to be ready', async () => {
      const nodes = await cp.api<{ items: { status?: { conditions?: { type: string; status: string }[] } }[] }>('GET', '/api/v1/nodes');
      return nodes.items.length > 0 && nodes.items.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    }, 60_000);
  } catch (err) {
    await stopControlPlane(dir);
    throw err;
  }
  return cp;
}

/** Each component and whether it runs. */
export function controlPlaneStatus(dir: string): { name: string; running: boolean }[] {
  return COMPONENTS.map((name) => ({ name, running: componentPid(dir, name) !== undefined }));
}

/** Stops the components that run from `dir`, KWOK first and etcd last; returns their names. */
export async function stopControlPlane(dir: string): Promise<string[]> {
  const stopped: string[] = [];
  for (const name of [...COMPONENTS].reverse()) {
    const pid = componentPid(dir, name);
    if (!pid) continue;
    await stopPid(pid);
    stopped.push(name);
  }
  return stopped;
}

/** SIGKILL to every component, synchronously: for a process's `exit` handler. */
export function killControlPlane(dir: string): void {
  for (const name of COMPONENTS) {
    const pid = componentPid(dir, name);
    if (pid) process.kill(pid, 'SIGKILL');
  }
}
