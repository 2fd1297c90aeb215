// `opsflow sandbox up|down|status`: a small world on loopback to try every runbook on — three web nodes as sshd
// hosts (the test fleet's script, on 127.0.20.x), HAProxy in front of them, the demo web app with a good and a broken
// release in a git repository served by `git daemon`, the customers' apps on the same nodes (./customers.ts), a
// memcached pool and its clients (./memcached.ts), the hot standby when its packages are there (./standby.ts), and
// the inventory and inputs that point at them.
// Everything it starts is a daemon with a pid file under sandbox/, so `down` can stop exactly that and nothing else.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { appPid, appPidFile, ensureWebApp, liveRelease, stopApp } from './apps';
import { fleetScript, readFleet, startFleet, stopFleet, type Fleet } from './fleet';
import { GIT_URL, LB_URL, namedWebHosts, SANDBOX, SANDBOX_FILES, standbyHosts, webDir, webHosts } from './layout';
import { backendServers, haproxyConfig } from './haproxy';
import { sandboxExamples, sandboxInventory } from './inputs';
import { PROJECT_ROOT } from './paths';
import { buildReleaseRepo, gitDaemonArgs } from './releaseRepo';
import { livePid, portOpen, SandboxError, stopPid, until } from './processes';
import { ensureKubernetes, kubernetesMissing, kubernetesNote, kubernetesPidFiles, kubernetesStatus, stopKubernetes } from './kubernetes';
import { customersPidFiles, customersStatus, ensureCustomers, stopCustomers } from './customers';
import { ensureMemcached, memcachedPidFiles, memcachedStatus, stopMemcached } from './memcached';
import { ensureStandby, standbyMissing, standbyNote, standbyPidFiles, standbyStatus, standbyZoneId, stopStandby } from './standby';

export { SandboxError };

/** What `up` needs and the machine lacks, as the sentence that says how to get it. */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) {
    missing.push('root: the web nodes are sshd daemons on 127.0.20.x for a system user opsflow-fleet; run `sudo npx opsflow sandbox up` (the worker may run as you)');
  }
  const has = (bin: string) => ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin'].some((d) => existsSync(path.join(d, bin)));
  const packages = [['sshd', 'openssh-server'], ['haproxy', 'haproxy'], ['git', 'git'], ['python3', 'python3'], ['runuser', 'util-linux'], ['memcached', 'memcached'], ['curl', 'curl']].filter(([bin]) => !has(bin)).map(([, pkg]) => pkg);
  if (packages.length) missing.push(`packages: apt-get install ${packages.join(' ')}`);
  return missing;
}

async function ensureGitDaemon(): Promise<void> {
  buildReleaseRepo(SANDBOX_FILES.git, SANDBOX.releases);
  if (livePid(SANDBOX_FILES.gitPid, SANDBOX_FILES.git)) return;
  execFileSync('git', gitDaemonArgs(SANDBOX_FILES.git, SANDBOX.gitPort, ['--detach', `--pid-file=${SANDBOX_FILES.gitPid}`]), { stdio: 'ignore', timeout: 10_000 });
  await until(`git daemon on 127.0.0.1:${SANDBOX.gitPort}`, () => portOpen('127.0.0.1', SANDBOX.gitPort));
}

async function ensureHaproxy(fleet: Fleet): Promise<void> {
  const cfg = haproxyConfig({
    backend: SANDBOX.backend,
    servers: namedWebHosts(fleet.hosts).map(([name, h]) => ({ name, address: h.address, port: SANDBOX.appPort })),
    port: SANDBOX.lbPort,
    socket: SANDBOX_FILES.haproxySocket,
  });
  mkdirSync(path.dirname(SANDBOX_FILES.haproxyCfg), { recursive: true, mode: 0o755 });
  const pid = livePid(SANDBOX_FILES.haproxyPid, SANDBOX_FILES.haproxyCfg);
  if (pid && existsSync(SANDBOX_FILES.haproxyCfg) && readFileSync(SANDBOX_FILES.haproxyCfg, 'utf8') === cfg) return;
  if (pid) await stopPid(pid);
  writeFileSync(SANDBOX_FILES.haproxyCfg, cfg);
  execFileSync('haproxy', ['-D', '-p', SANDBOX_FILES.haproxyPid, '-f', SANDBOX_FILES.haproxyCfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  await until('HAProxy', () => portOpen('127.0.0.1', SANDBOX.lbPort));
}

/** Writes the file unless it already holds `content`: the inputs are committed, and dist/ counts examples/ as a source. */
function writeIfChanged(file: string, content: string): void {
  if (!existsSync(file) || readFileSync(file, 'utf8') !== content) writeFileSync(file, content);
}

/**
 * The nodes' client key where the worker can read it: under sudo, owned by the person who ran sudo, so that the
 * worker of their `npm start` need not run as root.
 */
function clientKey(fleet: Fleet): string {
  const key = path.join(SANDBOX.dir, 'client_key');
  copyFileSync(fleet.identityFile, key);
  chmodSync(key, 0o600);
  if (process.env.SUDO_UID && process.env.SUDO_GID) chownSync(key, Number(process.env.SUDO_UID), Number(process.env.SUDO_GID));
  return key;
}

function writeInputs(fleet: Fleet, standby?: { zoneId: string }, kubernetes = false): string[] {
  writeIfChanged(SANDBOX_FILES.inventory, sandboxInventory({ ...fleet, identityFile: clientKey(fleet) }, standby, kubernetes));
  mkdirSync(SANDBOX_FILES.examples, { recursive: true });
  return Object.entries(sandboxExamples()).map(([file, input]) => {
    const out = path.join(SANDBOX_FILES.examples, file);
    writeIfChanged(out, `${JSON.stringify(input, null, 2)}\n`);
    return path.relative(PROJECT_ROOT, out);
  });
}

/** Idempotent: what runs is left alone, what does not is started. Returns what to tell the person. */
export async function sandboxUp(): Promise<string> {
  const missing = missingPrerequisites();
  if (missing.length) throw new SandboxError(`sandbox up needs:\n${missing.map((m) => `  - ${m}`).join('\n')}`);
  mkdirSync(SANDBOX.dir, { recursive: true });
  // The nodes' user reaches its keys and directories under it.
  chmodSync(SANDBOX.dir, 0o755);
  // Without its packages the hot standby is left out, and its nodes with it.
  const standbyNeeds = standbyMissing();
  const count = SANDBOX.nodes.length + (standbyNeeds.length ? 0 : SANDBOX.standby.infra.length);
  const fleet = startFleet({ count, dir: SANDBOX_FILES.fleet, port: SANDBOX.sshPort, net: SANDBOX.net });
  await ensureGitDaemon();
  for (const host of webHosts(fleet.hosts)) ensureWebApp(webDir(host), host.address, SANDBOX.appPort);
  ensureCustomers(namedWebHosts(fleet.hosts));
  await ensureMemcached(namedWebHosts(fleet.hosts));
  await ensureHaproxy(fleet);
  await until('HAProxy to see every node UP', async () => Object.values(await backendServers(SANDBOX_FILES.haproxySocket, SANDBOX.backend)).every((s) => s === 'UP'));
  if (!standbyNeeds.length) await ensureStandby(standbyHosts(fleet.hosts));
  // Without its binaries the Kubernetes cluster is left out.
  const kubernetesNeeds = kubernetesMissing();
  if (!kubernetesNeeds.length) await ensureKubernetes();
  const inputs = writeInputs(fleet, standbyNeeds.length ? undefined : { zoneId: await standbyZoneId() }, !kubernetesNeeds.length);
  return `sandbox up\n${await sandboxStatus()}\n\ninputs: ${inputs.join(', ')}\nnext: npx opsflow start blueGreenDeploy --input examples/sandbox/blueGreenDeploy.json\n${standbyNote(standbyNeeds)}\n${kubernetesNote(kubernetesNeeds)}`;
}

/** One line per piece: what it is, where, and whether it runs. */
export async function sandboxStatus(): Promise<string> {
  if (!existsSync(path.join(SANDBOX_FILES.fleet, 'hosts.json'))) return 'no sandbox here (start it: opsflow sandbox up)';
  const fleet = readFleet(SANDBOX_FILES.fleet);
  const sshd = new Map(fleetScript('status', '--dir', SANDBOX_FILES.fleet).trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ').slice(2).join(' ')]));
  const haproxy = livePid(SANDBOX_FILES.haproxyPid, SANDBOX_FILES.haproxyCfg);
  const servers = haproxy ? await backendServers(SANDBOX_FILES.haproxySocket, SANDBOX.backend).catch(() => ({}) as Record<string, string>) : {};
  const lines = namedWebHosts(fleet.hosts).map(([name, h]) => {
    const app = appPid(webDir(h));
    const live = liveRelease(webDir(h));
    return `  ${name.padEnd(8)} ssh ${h.address}:${h.port} ${sshd.get(h.name) ?? 'stopped'}; app :${SANDBOX.appPort} ${app ? `running ${live}` : `stopped (live: ${live})`}; HAProxy: ${servers[name] ?? '-'}`;
  });
  const git = livePid(SANDBOX_FILES.gitPid, SANDBOX_FILES.git);
  const standby = standbyHosts(fleet.hosts);
  return [
    `  HAProxy  ${LB_URL} ${haproxy ? 'running' : 'stopped'} (admin socket ${path.relative(PROJECT_ROOT, SANDBOX_FILES.haproxySocket)})`,
    ...lines,
    `  git      ${GIT_URL} ${git ? 'running' : 'stopped'} (releases ${SANDBOX.releases.map(([r]) => r).join(', ')})`,
    ...customersStatus(namedWebHosts(fleet.hosts)),
    ...memcachedStatus(namedWebHosts(fleet.hosts)),
    ...(standby.length ? standbyStatus(standby) : ['  hot standby: not built (PostgreSQL, moto_server and rclone needed; `up` says how)']),
    existsSync(SANDBOX_FILES.kubeconfig) ? kubernetesStatus() : '  kubernetes: not built (the control plane\'s binaries needed; `up` says how)',
    `  inventory ${path.relative(PROJECT_ROOT, SANDBOX_FILES.inventory)} (environments sandbox, staging, production${standby.length ? `, ${SANDBOX.standby.infra.map((i) => i.name).join(', ')}; system ${SANDBOX.standby.system}` : ''})`,
  ].join('\n');
}

/** Stops every process the sandbox started (its files stay, so `up` is quick again); returns what it stopped. */
export async function sandboxDown(): Promise<string> {
  const stopped: string[] = [];
  const hosts = existsSync(path.join(SANDBOX_FILES.fleet, 'hosts.json')) ? readFleet(SANDBOX_FILES.fleet).hosts : [];
  for (const [name, host] of namedWebHosts(hosts)) {
    if (await stopApp(webDir(host))) stopped.push(`app on ${name}`);
  }
  stopped.push(...(await stopCustomers(namedWebHosts(hosts))), ...(await stopMemcached(namedWebHosts(hosts))));
  const daemons: [string, string, string][] = [['HAProxy', SANDBOX_FILES.haproxyPid, SANDBOX_FILES.haproxyCfg], ['git daemon', SANDBOX_FILES.gitPid, SANDBOX_FILES.git]];
  for (const [what, pidFile, marker] of daemons) {
    const pid = livePid(pidFile, marker);
    if (!pid) continue;
    await stopPid(pid);
    stopped.push(what);
  }
  stopped.push(...(await stopStandby(standbyHosts(hosts))));
  stopped.push(...(await stopKubernetes()));
  if (hosts.length) {
    stopFleet(SANDBOX_FILES.fleet);
    stopped.push(`sshd on ${hosts.map((h) => h.address).join(', ')}`);
  }
  return stopped.length ? `sandbox down: stopped ${stopped.join(', ')}` : 'sandbox down: nothing was running';
}

/** Every pid file of a process the sandbox runs, for a check that `down` left none behind. */
export function sandboxPidFiles(): string[] {
  const hosts = existsSync(path.join(SANDBOX_FILES.fleet, 'hosts.json')) ? readFleet(SANDBOX_FILES.fleet).hosts : [];
  return [
    SANDBOX_FILES.haproxyPid,
    SANDBOX_FILES.gitPid,
    ...webHosts(hosts).map((h) => appPidFile(webDir(h))),
    ...customersPidFiles(namedWebHosts(hosts)),
    ...memcachedPidFiles(namedWebHosts(hosts)),
    ...hosts.map((h) => path.join(h.dir, 'sshd.pid')),
    ...standbyPidFiles(standbyHosts(hosts)),
    ...kubernetesPidFiles(),
  ];
}
