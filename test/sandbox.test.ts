// The README's ten-minute tour, run as written: its `npx opsflow` commands in order against a dev server with its
// Web UI and a worker on the sandbox's inventory — `sandbox up`, the blue/green deploy of examples/sandbox/ under
// steady traffic through the sandbox's HAProxy, its promote gate approved, the broken release rolled back, a
// rolling upgrade, the hot-standby release through its DNS swap — with the screenshot script run while the deploy
// waits at its gate; then `sandbox down` leaves no process behind (PostgreSQL and moto included). The sandbox
// lives in its own directory here (OPSFLOW_SANDBOX_DIR), fresh for the test.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DescribeAddressesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ListHostedZonesByNameCommand, ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portOpen, runningPid } from '../src/sandbox/processes';
import { startDevServer } from '../src/temporal/devServer';
import { startLoad } from './support/haproxy';
import { freePort, ROOT, runOpsflow, startWorker, unique } from './support/harness';

const SANDBOX_DIR = mkdtempSync(path.join(tmpdir(), 'opsflow-sandbox-'));
// The sandbox's modules read OPSFLOW_SANDBOX_DIR when they load: imported in beforeAll, once it is set.
let sb: typeof import('../src/sandbox/layout') &
  typeof import('../src/sandbox/sandbox') &
  typeof import('../src/sandbox/fleet') &
  typeof import('../src/sandbox/standby') &
  typeof import('../src/sandbox/kubernetes') &
  typeof import('../src/sandbox/controlPlane');
type CliResult = Awaited<ReturnType<typeof runOpsflow>>;

/** The `npx opsflow` lines of the README's tour block (`sudo` dropped: the suite runs as root), and its curl URL. */
function tour(): { commands: string[][]; curl: string } {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = readme.match(/<!-- tour -->\n```sh\n([\s\S]*?)```/)?.[1];
  if (!block) throw new Error('README.md needs a sh block after <!-- tour -->');
  const lines = block.split('\n').map((l) => l.replace(/#.*/, '').trim());
  return {
    commands: lines.filter((l) => /^(sudo )?npx opsflow /.test(l)).map((l) => l.replace(/^(sudo )?npx opsflow /, '').split(/\s+/)),
    curl: lines.find((l) => l.startsWith('curl '))?.split(/\s+/)[1] ?? '',
  };
}

const live = () => sb.webHosts(sb.readFleet(sb.SANDBOX_FILES.fleet).hosts).map((h) => path.basename(readlinkSync(path.join(sb.webDir(h), 'current'))));

const aws = <T>(C: new (o: object) => T, endpoint: string, region: string) => new C({ region, endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });

/** Each A record of the sandbox's zone and its address, by name. */
async function zoneRecords(endpoint: string): Promise<Record<string, string>> {
  const r53 = aws(Route53Client, endpoint, 'us-east-1');
  const zone = (await r53.send(new ListHostedZonesByNameCommand({ DNSName: 'gigadb.sandbox' }))).HostedZones?.[0]?.Id;
  const sets = (await r53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zone }))).ResourceRecordSets ?? [];
  return Object.fromEntries(sets.filter((r) => r.Type === 'A').map((r) => [(r.Name ?? '').replace(/\.$/, ''), r.ResourceRecords?.[0]?.Value ?? '']));
}

/** The region's Elastic IPs by the record their Name tag is for (`eip-<record>`). */
async function elasticIps(endpoint: string, region: string): Promise<Record<string, string>> {
  const res = await aws(EC2Client, endpoint, region).send(new DescribeAddressesCommand({}));
  return Object.fromEntries((res.Addresses ?? []).map((a) => [(a.Tags?.find((t) => t.Key === 'Name')?.Value ?? '').replace(/^eip-/, ''), a.PublicIp ?? '']));
}

let server: Awaited<ReturnType<typeof startDevServer>>;
let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> } | undefined;
const queue = unique('sandbox');

beforeAll(async () => {
  process.env.OPSFLOW_SANDBOX_DIR = SANDBOX_DIR;
  sb = { ...(await import('../src/sandbox/layout')), ...(await import('../src/sandbox/sandbox')), ...(await import('../src/sandbox/fleet')), ...(await import('../src/sandbox/standby')), ...(await import('../src/sandbox/kubernetes')), ...(await import('../src/sandbox/controlPlane')) };
  server = await startDevServer({ uiPort: await freePort() });
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: server.address });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await sb?.sandboxDown().catch(() => undefined);
  await env?.teardown();
  await server?.stop();
  rmSync(SANDBOX_DIR, { recursive: true, force: true });
}, 120_000);

describe('the ten-minute tour on the sandbox', () => {
  it('without root, `sandbox up` says what it needs and changes nothing', async () => {
    const result = await promisify(execFile)('runuser', ['-u', 'nobody', '--', process.execPath, 'bin/opsflow.js', 'sandbox', 'up'], { cwd: ROOT, env: { ...process.env, OPSFLOW_SANDBOX_DIR: path.join(SANDBOX_DIR, 'none') } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('sandbox up needs:\n  - root: the web nodes are sshd daemons on 127.0.20.x');
    expect(result.stderr).toContain('sudo npx opsflow sandbox up');
    expect(existsSync(path.join(SANDBOX_DIR, 'none'))).toBe(false);
  }, 60_000);

  it('without moto_server and rclone, `sandbox up` leaves the hot standby out and says what to install', () => {
    const missing = sb.standbyMissing('/nonexistent');
    expect(missing).toEqual(["pip install 'moto[server]'", 'apt-get install rclone']);
    expect(sb.standbyNote(missing)).toBe(
      "left out: the hot standby and data sync (hotStandbyRelease, dataSync, backupDatabase, restoreDatabase, pruneBackups, pauseDataSync, safeMigration); for them: pip install 'moto[server]'; apt-get install rclone, then up again",
    );
  });

  it("without the control plane's binaries, `sandbox up` leaves the Kubernetes cluster out and says what to install", () => {
    const missing = sb.kubernetesMissing('/nonexistent');
    expect(missing).toEqual([expect.stringMatching(/^bash scripts\/k8s-binaries\.sh /)]);
    expect(sb.kubernetesNote(missing)).toBe(`left out: the Kubernetes cluster (k8sDeploy); for it: ${missing[0]}, then up again`);
  });

  it("runs the README's commands: a deploy approved at its gate with 0 failed requests, a broken release rolled back, a rolling upgrade, a hot-standby release through its DNS swap; then down stops everything", async () => {
    const { GIT_URL, LB_URL, MOTO_URL, SANDBOX, SANDBOX_FILES, readFleet, sandboxPidFiles } = sb;
    expect(sb.standbyMissing(), 'the suite installs PostgreSQL, moto and rclone').toEqual([]);
    expect(sb.kubernetesMissing(), 'the suite builds the control plane').toEqual([]);
    const { commands, curl } = tour();
    expect(commands[0]).toEqual(['sandbox', 'up']);
    expect(curl).toBe(LB_URL);
    // As `sudo` runs it: the nodes' client key goes to the person who ran sudo (nobody, here).
    const asSudo = { SUDO_UID: '65534', SUDO_GID: '65534' };
    const cli = (args: string[]): Promise<CliResult> => runOpsflow(args, { env: { TEMPORAL_ADDRESS: server.address, OPSFLOW_TASK_QUEUE: queue, OPSFLOW_USER: 'alice', OPSFLOW_INVENTORY: SANDBOX_FILES.inventory, ...asSudo } });
    const shots = mkdtempSync(path.join(tmpdir(), 'opsflow-shots-'));
    const ran: { args: string[]; result: CliResult }[] = [];
    let load: ReturnType<typeof startLoad> | undefined;
    let loadResult: Awaited<ReturnType<NonNullable<typeof load>['stop']>> | undefined;
    let id = '';
    let starts = 0;
    for (const template of commands) {
      const args = template.map((a) => (a === '<id>' ? id : a));
      const [verb, what] = args;
      if (verb === 'start' && what === 'rollingUpgrade') loadResult = await load?.stop();
      if (verb === 'start' && starts++ === 0) {
        // Before the first deploy: v1 is what the README's curl gets, and traffic starts.
        expect(await (await fetch(curl)).text()).toBe('v1');
        load = startLoad(LB_URL);
      }
      const result = await cli(args);
      ran.push({ args, result });
      const broken = verb === 'watch' && ran.some((r) => r.args.includes('examples/sandbox/blueGreenDeploy.broken.json') && r.result.stdout.includes(id));
      expect(result.code, `opsflow ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`).toBe(broken ? 1 : 0);
      if (verb === 'start') id = result.stdout.match(/^started \S+ (\S+)/m)?.[1] ?? '';
      if (verb === 'sandbox' && what === 'up') {
        expect(statSync(path.join(SANDBOX.dir, 'client_key'))).toMatchObject({ uid: 65534, mode: 0o100600 });
        expect(statSync(SANDBOX_FILES.kubeconfig)).toMatchObject({ uid: 65534, mode: 0o100600 });
        worker = await startWorker(env, SANDBOX_FILES.inventory, queue);
      }
      if (verb === 'watch' && ran.filter((r) => r.args[0] === 'watch').length === 1) {
        // The first watch returns at the promote gate: the moment the screenshot script is for.
        expect(result.stdout).toContain('WAITING at gate "promote" (approval)');
        expect(live()).toEqual(['v2', 'v1', 'v1']);
        await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/screenshots.ts', '--run', id, '--ui', server.uiUrl as string, '--out', shots], {
          cwd: ROOT,
          env: { ...process.env, TEMPORAL_ADDRESS: server.address },
          timeout: 180_000,
        });
      }
      if (verb === 'watch' && ran.at(-2)?.args[0] === 'approve' && ran.some((r) => r.args.includes('examples/sandbox/hotStandbyRelease.json') && r.result.stdout.includes(id))) {
        // Through the swap: every record of the zone at eu's Elastic IPs (as moto allocated them), read from Route53.
        expect(result.stdout).toContain('state succeeded');
        expect(await zoneRecords(MOTO_URL)).toEqual(await elasticIps(MOTO_URL, 'eu-west-3'));
      }
      if (broken) {
        expect(result.stdout).toContain('web1 is not healthy');
        expect(result.stdout).toMatch(/undo: roll web1 back to v2.*compensated/);
        expect(live()).toEqual(['v2', 'v2', 'v2']);
      }
    }
    expect(ran.map((r) => r.args.slice(0, 2).join(' '))).toEqual([
      'sandbox up',
      `start blueGreenDeploy`,
      `watch ${ran[1].result.stdout.match(/^started \S+ (\S+)/m)?.[1]}`,
      expect.stringMatching(/^approve /),
      expect.stringMatching(/^watch /),
      'start blueGreenDeploy',
      expect.stringMatching(/^watch /),
      'start rollingUpgrade',
      expect.stringMatching(/^watch /),
      expect.stringMatching(/^approve /),
      expect.stringMatching(/^watch /),
      'schedule apply',
      'start hotStandbyRelease',
      expect.stringMatching(/^watch /),
      expect.stringMatching(/^approve /),
      expect.stringMatching(/^watch /),
      'roles gigadb',
      'sandbox down',
    ]);
    expect(ran[13].result.stdout).toContain('WAITING at gate "validation"');
    expect(ran[16].result.stdout).toMatch(/production\s+eu\s+eu-west-3\s+v2/);
    expect(ran[0].result.stdout).toContain(`web3     ssh 127.0.20.3:${SANDBOX.sshPort} running; app :${SANDBOX.appPort} running v1; HAProxy: UP`);
    expect(ran[0].result.stdout).toContain(GIT_URL);
    const { memcached: M, customers } = SANDBOX;
    expect(ran[0].result.stdout).toContain(`memcached 127.0.0.1:${M.old.port} (the pool's, -m 64) running; 127.0.0.1:${M.new.port} (its replacement, -m 96) running`);
    expect(ran[0].result.stdout).toContain(`clients :${M.clientPort} (memcachedPool's): web1 running (pool 127.0.0.1:${M.old.port});`);
    expect(ran[0].result.stdout).toContain('acme     :8490 staging web1 running v1; production web2 running v1, web3 running v1');

    // Traffic through HAProxy from before the deploy to the end of the broken one: not one request failed.
    expect(loadResult?.failed, loadResult?.errors.join('\n')).toBe(0);
    expect(loadResult?.ok).toBeGreaterThan(20);
    // While the deploy waits at its gate, web1 serves v2 beside v1; v3-broken is never served.
    expect(loadResult?.served[0]).toBe('v1');
    expect(loadResult?.served.at(-1)).toBe('v2');
    expect(new Set(loadResult?.served)).toEqual(new Set(['v1', 'v2']));
    expect(ran[4].result.stdout).toContain('state succeeded');
    expect(ran[8].result.stdout).toContain('WAITING at gate "upgrade"');
    expect(ran[10].result.stdout).toContain('state succeeded');

    for (const name of ['ui-gate.png', 'opsflow-watch.png']) expect(statSync(path.join(shots, name)).size).toBeGreaterThan(10_000);
    rmSync(shots, { recursive: true, force: true });

    // `sandbox down`: no process of the sandbox left, by pid and by port.
    for (const file of sandboxPidFiles()) expect(runningPid(file), file).toBeUndefined();
    const endpoints: [string, number][] = [
      ['127.0.0.1', SANDBOX.lbPort],
      ['127.0.0.1', SANDBOX.gitPort],
      ...readFleet(SANDBOX_FILES.fleet).hosts.flatMap((h): [string, number][] => [[h.address, SANDBOX.sshPort], [h.address, SANDBOX.appPort]]),
      ...SANDBOX.standby.infra.map((i): [string, number] => ['127.0.0.1', i.pgPort]),
      ['127.0.0.1', SANDBOX.standby.motoPort],
      ['127.0.20.4', SANDBOX.standby.notesPort],
      ...[M.old.port, M.new.port].map((port): [string, number] => ['127.0.0.1', port]),
      ...sb.webHosts(readFleet(SANDBOX_FILES.fleet).hosts).flatMap((h) => [M.clientPort, ...customers.services.map(([, port]) => port)].map((port): [string, number] => [h.address, port])),
      ...Object.values(SANDBOX.kubernetes.ports).map((port): [string, number] => ['127.0.0.1', port]),
    ];
    expect(readFleet(SANDBOX_FILES.fleet).hosts).toHaveLength(5);
    for (const [host, port] of endpoints) expect(await portOpen(host, port), `${host}:${port}`).toBe(false);

    // `up` again brings it back as it was: the release the tour left live, behind HAProxy; `status` says so.
    expect((await cli(['sandbox', 'up'])).code).toBe(0);
    expect(await (await fetch(LB_URL)).text()).toBe('v2');
    const status = await cli(['sandbox', 'status']);
    for (const node of SANDBOX.nodes) expect(status.stdout).toMatch(new RegExp(`${node} .* running; app :${SANDBOX.appPort} running v2; HAProxy: UP`));
    expect(status.stdout).toMatch(/moto +http:\/\/127.0.0.1:5480 running/);
    expect(status.stdout).toContain(`kubernetes https://127.0.0.1:${SANDBOX.kubernetes.ports.api} running`);

    // The hot standby's other inputs, as they are: a backup, its restore on the standby, the nightly sync, pruning,
    // a pause of the nightly syncs (the tour applied them) and the notes application's migration. eu is production
    // since the release: the sync copies its 15 files over hk's 20.
    for (const workflow of ['backupDatabase', 'restoreDatabase', 'dataSync', 'pruneBackups', 'pauseDataSync', 'safeMigration']) {
      const started = await cli(['start', workflow, '--input', `examples/sandbox/${workflow}.json`]);
      const watched = await cli(['watch', started.stdout.match(/^started \S+ (\S+)/m)?.[1] ?? '']);
      expect(watched.stdout, `${workflow}:\n${started.stderr}${watched.stdout}${watched.stderr}`).toContain('state succeeded');
    }
    expect(readdirSync(path.join(SANDBOX_FILES.files('hk'), 'datasets')).sort()).toEqual(readdirSync(path.join(SANDBOX_FILES.files('eu'), 'datasets')).sort());
    expect(readdirSync(path.join(SANDBOX_FILES.files('hk'), 'datasets'))).toHaveLength(15);
    const notes = new Client({ host: '127.0.0.1', port: SANDBOX.standby.infra[0].pgPort, user: SANDBOX.standby.dbUser, database: 'notes' });
    await notes.connect();
    const columns = (await notes.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY ordinal_position")).rows.map((r) => r.column_name);
    await notes.end();
    expect(columns).toEqual(['id', 'body', 'author']);

    // memcachedPool and customerRollout, each as it is and through its gate: every web node's client moved from
    // the pool's server to its replacement; both customers on v2 in staging, then, approved, in production.
    for (const workflow of ['memcachedPool', 'customerRollout']) {
      expect(readFileSync(path.join(SANDBOX_FILES.examples, `${workflow}.json`), 'utf8'), 'a committed input names no path of this checkout').not.toContain(ROOT);
      const started = await cli(['start', workflow, '--input', `examples/sandbox/${workflow}.json`]);
      const runId = started.stdout.match(/^started \S+ (\S+)/m)?.[1] ?? '';
      expect((await cli(['watch', runId])).stdout, `${workflow}: ${started.stderr}`).toMatch(/WAITING at gate "(upgrade|promote)" \(approval\)/);
      expect((await cli(['approve', runId])).code).toBe(0);
      const watched = await cli(['watch', runId]);
      expect(watched.stdout, `${workflow}:\n${watched.stdout}${watched.stderr}`).toContain('state succeeded');
    }
    for (const host of sb.webHosts(readFleet(SANDBOX_FILES.fleet).hosts)) {
      expect(JSON.parse(await (await fetch(`http://${host.address}:${M.clientPort}/config`)).text()).memcached).toEqual([`127.0.0.1:${M.new.port}`]);
      for (const [, port] of SANDBOX.customers.services) expect(await (await fetch(`http://${host.address}:${port}/`)).text()).toBe('v2');
    }

    // k8sDeploy on the sandbox's cluster, restarted by the second `up` from what etcd kept: v2 through its promote
    // gate, then v3-never-ready, which never rolls out and goes back to v2.
    const cluster = sb.openControlPlane(SANDBOX_FILES.kubernetes);
    const { namespace, deployment } = SANDBOX.kubernetes;
    const image = async () => (await cluster.api<{ spec: { template: { spec: { containers: { image: string }[] } } } }>('GET', `/apis/apps/v1/namespaces/${namespace}/deployments/${deployment}`)).spec.template.spec.containers[0].image;
    expect(await image()).toBe(sb.k8sImage('v1'));
    const deploy = await cli(['start', 'k8sDeploy', '--input', 'examples/sandbox/k8sDeploy.json']);
    const deployId = deploy.stdout.match(/^started \S+ (\S+)/m)?.[1] ?? '';
    expect((await cli(['watch', deployId])).stdout, deploy.stderr).toContain('WAITING at gate "promote" (approval)');
    expect(await image()).toBe(sb.k8sImage('v2'));
    expect((await cli(['approve', deployId])).code).toBe(0);
    expect((await cli(['watch', deployId])).stdout).toContain('state succeeded');
    const broken = await cli(['start', 'k8sDeploy', '--input', 'examples/sandbox/k8sDeploy.broken.json']);
    const watchedBroken = await cli(['watch', broken.stdout.match(/^started \S+ (\S+)/m)?.[1] ?? '']);
    expect(watchedBroken.code, watchedBroken.stdout).toBe(1);
    expect(watchedBroken.stdout).toContain('web did not roll out: progress deadline exceeded');
    expect(watchedBroken.stdout).toMatch(/undo: roll web back to revision \d+.*compensated/);
    expect(await image()).toBe(sb.k8sImage('v2'));
    // Stopped and started again, the cluster still runs what the last run left.
    expect(await sb.stopKubernetes()).toEqual(['Kubernetes (kwok, kube-scheduler, kube-controller-manager, kube-apiserver, etcd)']);
    await sb.ensureKubernetes();
    expect(await image()).toBe(sb.k8sImage('v2'));

    expect((await cli(['sandbox', 'down'])).code).toBe(0);
    for (const file of sandboxPidFiles()) expect(runningPid(file), file).toBeUndefined();
    // Not one process of the control plane, whatever its pid files say: none runs from the sandbox's directory.
    const cmdline = (pid: string) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return ''; // gone meanwhile
      }
    };
    const fromCluster = readdirSync('/proc').filter((pid) => /^\d+$/.test(pid) && cmdline(pid).includes(SANDBOX_FILES.kubernetes));
    expect(fromCluster).toEqual([]);
  }, 600_000);
});
