// A real Kubernetes control plane on loopback for the k8sDeploy tests: etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler built from the Go module proxy (scripts/k8s-binaries.sh), and KWOK standing in for kubelets:
// its nodes take pods and its stages move them through their states without running containers. Certificates,
// tokens and kubeconfigs are generated in a temporary directory; every server binds 127.0.0.1.
//
// The stages below follow KWOK's own "fast" node and pod stages, plus two for the tests, chosen by the image tag:
//   …-never-ready   the container runs but never passes readiness
//   …-crashloop     ready at first, then (after CRASH_AFTER_MS) restarted and in CrashLoopBackOff
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, ROOT, waitFor } from './harness';

export const NEVER_READY = '-never-ready';
export const CRASHLOOP = '-crashloop';
// Long enough for the rollout to finish first, so that the crash is for the watch to catch.
export const CRASH_AFTER_MS = 15_000;

const matchesTag = (suffix: string) => `'.spec.containers.[] | .image | endswith("${suffix}")'`;

/** A pending pod taken to Running: its containers ready, or (image tag NEVER_READY) running but never ready. */
const runningPodStage = (name: string, ready: boolean) => `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: ${name} }
spec:
  resourceRef: { apiGroup: v1, kind: Pod }
  selector:
    matchExpressions:
    - { key: '.metadata.deletionTimestamp', operator: DoesNotExist }
    - { key: '.status.phase', operator: In, values: [Pending] }
    - { key: ${matchesTag(NEVER_READY)}, operator: ${ready ? 'NotIn' : 'In'}, values: ['true'] }
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - { lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized }
      - { lastTransitionTime: {{ $now | Quote }}, ${ready ? 'status: "True", type: Ready }' : 'status: "False", type: Ready, reason: ContainersNotReady }'}
      - { lastTransitionTime: {{ $now | Quote }}, ${ready ? 'status: "True", type: ContainersReady }' : 'status: "False", type: ContainersReady, reason: ContainersNotReady }'}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: ${ready}
        restartCount: 0
        state: { running: { startedAt: {{ $now | Quote }} } }
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}`;

const STAGES = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: node-initialize }
spec:
  resourceRef: { apiGroup: v1, kind: Node }
  selector:
    matchExpressions:
    - { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True'] }
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      - { address: {{ NodeIP | Quote }}, type: InternalIP }
      - { address: {{ NodeName | Quote }}, type: Hostname }
      allocatable: { cpu: 1k, memory: 1Ti, pods: 1M }
      capacity: { cpu: 1k, memory: 1Ti, pods: 1M }
      nodeInfo:
        architecture: amd64
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        operatingSystem: linux
      phase: Running
---
${runningPodStage('pod-ready', true)}
---
${runningPodStage('pod-never-ready', false)}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: pod-crashloop }
spec:
  resourceRef: { apiGroup: v1, kind: Pod }
  selector:
    matchExpressions:
    - { key: '.metadata.deletionTimestamp', operator: DoesNotExist }
    - { key: '.status.phase', operator: In, values: [Running] }
    - { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: In, values: ['True'] }
    - { key: ${matchesTag(CRASHLOOP)}, operator: In, values: ['true'] }
  delay: { durationMilliseconds: ${CRASH_AFTER_MS} }
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - { lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized }
      - { lastTransitionTime: {{ $now | Quote }}, status: "False", type: Ready, reason: ContainersNotReady }
      - { lastTransitionTime: {{ $now | Quote }}, status: "False", type: ContainersReady, reason: ContainersNotReady }
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 1
        lastState: { terminated: { exitCode: 1, reason: Error, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }} } }
        state: { waiting: { reason: CrashLoopBackOff, message: "back-off 10s restarting failed container" } }
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: { name: pod-delete }
spec:
  resourceRef: { apiGroup: v1, kind: Pod }
  selector:
    matchExpressions:
    - { key: '.metadata.deletionTimestamp', operator: Exists }
  next:
    delete: true
`;

export interface ControlPlane {
  /** An admin kubeconfig, its context named `context`. */
  kubeconfig: string;
  context: string;
  server: string;
  /** A call to the API server as the admin; JSON in and out. */
  api<T = Record<string, unknown>>(method: string, urlPath: string, body?: unknown, contentType?: string): Promise<T>;
  stop(): Promise<void>;
}

function binDir(): string {
  const dir = execFileSync('bash', [path.join(ROOT, 'scripts/k8s-binaries.sh'), '--bin-dir'], { encoding: 'utf8' }).trim();
  const missing = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'].filter((b) => !existsSync(path.join(dir, b)));
  if (missing.length) throw new Error(`missing ${missing.join(', ')} in ${dir}: run scripts/k8s-binaries.sh (scripts/setup.sh test does)`);
  return dir;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, the API server's serving certificate for 127.0.0.1, and the service-account signing key pair. */
function certificates(dir: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=opsflow-test-ca');
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver');
  writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes.default.svc\n');
  openssl(dir, 'x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', '2', '-extfile', 'san.cnf');
  openssl(dir, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key');
  openssl(dir, 'ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
}

function kubeconfig(server: string, ca: string, token: string, context: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'opsflow-test', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
    users: [{ name: context, user: { token } }],
    contexts: [{ name: context, context: { cluster: 'opsflow-test', user: context } }],
    'current-context': context,
  });
}

export async function startControlPlane(opts: { context?: string; nodes?: number } = {}): Promise<ControlPlane> {
  const bin = binDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-k8s-'));
  const logs = path.join(ROOT, 'test/artifacts', `k8s-${path.basename(dir)}`);
  mkdirSync(logs, { recursive: true });
  certificates(dir);
  const ca = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
  const token = () => randomBytes(24).toString('hex');
  const tokens = { admin: token(), kcm: token(), scheduler: token(), kwok: token() };
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
  const [etcdPort, peerPort, apiPort, kwokPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  const context = opts.context ?? 'opsflow-test';
  const files = Object.fromEntries(
    Object.entries({ admin: tokens.admin, kcm: tokens.kcm, scheduler: tokens.scheduler, kwok: tokens.kwok }).map(([who, t]) => {
      const file = path.join(dir, `${who}.kubeconfig`);
      writeFileSync(file, kubeconfig(server, ca, t, who === 'admin' ? context : who), { mode: 0o600 });
      return [who, file];
    }),
  );
  writeFileSync(path.join(dir, 'kwok.yaml'), STAGES);

  const procs: { name: string; child: ChildProcess }[] = [];
  const run = (name: string, args: string[]) => {
    const out = createWriteStream(path.join(logs, `${name}.log`));
    const child = spawn(path.join(bin, name), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    procs.push({ name, child });
    return child;
  };
  const killAll = () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  };
  process.once('exit', killAll);

  const api = <T>(method: string, urlPath: string, body?: unknown, contentType = 'application/json'): Promise<T> =>
    new Promise((resolve, reject) => {
      const req = https.request(`${server}${urlPath}`, { method, ca, headers: { authorization: `Bearer ${tokens.admin}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': contentType }) }, timeout: 10_000 }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 400) reject(new Error(`${method} ${urlPath}: HTTP ${res.statusCode} ${text.slice(0, 500)}`));
          else resolve((text ? JSON.parse(text) : {}) as T);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  const alive = (name: string) => {
    const p = procs.find((x) => x.name === name);
    if (p && p.child.exitCode !== null) throw new Error(`${name} exited with ${p.child.exitCode}: see ${logs}/${name}.log`);
  };
  try {
    run('etcd', [
      '--name=opsflow-test',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=opsflow-test=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor(async () => {
      alive('etcd');
      const res = await fetch(`http://127.0.0.1:${etcdPort}/health`);
      return res.ok;
    }, 'etcd', 60_000, 200);

    run('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'certs')}`,
      '--tls-cert-file=apiserver.crt',
      '--tls-private-key-file=apiserver.key',
      '--client-ca-file=ca.crt',
      '--token-auth-file=tokens.csv',
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-account-key-file=sa.pub',
      '--service-account-signing-key-file=sa.key',
      '--service-cluster-ip-range=10.96.0.0/16',
      // KWOK's pods mount no tokens, so nothing waits for service accounts; and with no node lifecycle controller
      // to lift it, the not-ready taint a new node gets would keep every pod off the KWOK nodes.
      '--disable-admission-plugins=ServiceAccount,TaintNodesByCondition',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
    ]);
    await waitFor(async () => {
      alive('kube-apiserver');
      return readyz(server, ca, tokens.admin);
    }, 'kube-apiserver', 120_000, 500);

    run('kube-controller-manager', [
      `--kubeconfig=${files.kcm}`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--leader-elect=false',
      '--controllers=deployment-controller,replicaset-controller,garbage-collector-controller',
      '--profiling=false',
    ]);
    run('kube-scheduler', [`--kubeconfig=${files.scheduler}`, '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false', '--profiling=false']);
    run('kwok', [`--kubeconfig=${files.kwok}`, `--config=${path.join(dir, 'kwok.yaml')}`, '--manage-all-nodes=true', `--server-address=127.0.0.1:${kwokPort}`]);

    for (let i = 0; i < (opts.nodes ?? 1); i++) {
      await api('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: `kwok-node-${i}`, labels: { type: 'kwok' } } });
    }
    await waitFor(async () => {
      for (const name of ['kube-controller-manager', 'kube-scheduler', 'kwok']) alive(name);
      const nodes = await api<{ items: { status?: { conditions?: { type: string; status: string }[] } }[] }>('GET', '/api/v1/nodes');
      return nodes.items.length > 0 && nodes.items.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    }, 'KWOK nodes to be ready', 60_000, 500);
  } catch (err) {
    killAll();
    throw err;
  }

  return {
    kubeconfig: files.admin,
    context,
    server,
    api,
    async stop() {
      process.removeListener('exit', killAll);
      for (const p of [...procs].reverse()) {
        if (p.child.exitCode !== null) continue;
        const exited = new Promise((r) => p.child.once('exit', r));
        p.child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function readyz(server: string, ca: string, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(`${server}/readyz`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}
