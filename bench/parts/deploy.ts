// Part 5, deploy: the price of durability. blueGreenDeploy of a small release to three nodes behind a real
// HAProxy (the test suite's set-up: test/support/haproxy.ts, releaseRepo.ts, webapp/ctl.sh) against the same
// steps as a plain bash script over ssh (bench/deploy/plain.sh). Both run under steady traffic through HAProxy,
// which must see no failed request, so the two are known to do the same job.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import type { blueGreenDeploy } from '../../src/workflows/blueGreenDeploy';
import { runProgram } from '../contenders/spawn';
import { tail } from '../contenders/contender';
import { benchFleet, ENVIRONMENT, firstHosts, sshOptions, writeOpsInventory } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { summarize, timed } from '../lib/stats';
import { startOpsWorker, uniqueId, withTemporal } from '../lib/temporal';
import { startHaproxy, startLoad, startReleaseRepo, type Haproxy, type ReleaseRepo } from '../lib/testSupport';
import type { Part, PartOutput } from './part';

/** Not the test suite's 8080: it uses the same node addresses (127.0.10.1-3) and may be running. */
const APP_PORT = '18080';
const NODES = 3;
const CTL = path.join(__dirname, '../../test/support/webapp/ctl.sh');
const PLAIN = path.join(__dirname, '../deploy/plain.sh');
const KEEP = 3;
const HEALTH_TIMEOUT_S = 10;

const nodeDir = (hostDir: string) => path.join(hostDir, 'root', 'bench-deploy');

export const deploy: Part = {
  name: 'deploy',
  describe: 'blueGreenDeploy to 3 nodes behind HAProxy vs the same steps as a plain bash script over ssh',
  tools: ['opsflow', 'temporal', 'openssh', 'haproxy'],
  async run(ctx): Promise<PartOutput> {
    const rounds = ctx.quick ? 1 : 3;
    const fleet = benchFleet();
    const hosts = firstHosts(NODES);
    for (const h of hosts) execFileSync('install', ['-d', '-o', fleet.user, nodeDir(h.dir)]);
    // A new release for every deploy: each one clones, builds and switches, none finds its work done.
    const names = Array.from({ length: 1 + 2 * rounds }, (_, i) => `r${i}`);
    const servers = hosts.map((h, i) => ({ node: h, server: `web${i + 1}` }));
    let repo: ReleaseRepo | undefined;
    let haproxy: Haproxy | undefined;
    const figures: Figure[] = [];
    const notes: string[] = [];
    try {
      repo = await startReleaseRepo(names.map((n) => [n, 200]));
      haproxy = await startHaproxy('web', servers.map((s) => ({ name: s.server, address: s.node.address, port: Number(APP_PORT) })));
      const service = {
        nodes: hosts.map((h) => h.name),
        blue: hosts[0].name,
        release: {
          root: '{dir}/deploys',
          live: '{dir}/current',
          restart: ['sh', CTL, '{live}', '{address}', '{port}', '{dir}'],
          build: ['sh', '-c', 'echo built > BUILT'],
          smoke: ['python3', '-c', 'import ast; ast.parse(open("app.py").read())'],
          keep: KEEP,
        },
        health: { url: 'http://{address}:{port}/health', timeout: `${HEALTH_TIMEOUT_S}s` },
        haproxy: { backend: 'web', socket: haproxy.socket, servers: Object.fromEntries(servers.map((s) => [s.node.name, s.server])), drainTimeout: `${HEALTH_TIMEOUT_S}s` },
      };
      const inventory = writeOpsInventory({ hosts: Object.fromEntries(hosts.map((h) => [h.name, { vars: { dir: nodeDir(h.dir), port: APP_PORT } }])), services: { web: service } });
      const r = repo;
      const hp = haproxy;
      await withTemporal(async (t) => {
        const worker = await startOpsWorker(t, inventory);
        let activities = 0;
        const viaOpsflow = async (release: string) => {
          const handle = await t.client.workflow.start<typeof blueGreenDeploy>('blueGreenDeploy', {
            taskQueue: worker.taskQueue,
            workflowId: uniqueId('deploy'),
            args: [{ environment: ENVIRONMENT, service: 'web', release: { id: r.commits[release], git: { repo: r.url, ref: r.commits[release] } }, failure: { onFailure: 'fail' } }],
          });
          const result = await handle.result();
          activities = (await handle.fetchHistory()).events?.filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).length ?? 0;
          if (!result.ok || result.nodes.some((n) => n.outcome !== 'switched')) throw new Error(`blueGreenDeploy: ${JSON.stringify(result.nodes)}`);
        };
        const viaScript = async (release: string) => {
          const env = { ...process.env, SSH_OPTS: sshOptions().join(' '), SSH_USER: fleet.user, SOCKET: hp.socket, BACKEND: 'web', REPO: r.url, REF: r.commits[release], RELEASE: r.commits[release], PORT: APP_PORT, CTL, KEEP: String(KEEP), TIMEOUT: String(HEALTH_TIMEOUT_S) };
          const res = await runProgram('bash', [PLAIN, ...servers.map((s) => `${s.node.name}:${s.node.address}:${s.server}:${nodeDir(s.node.dir)}`)], { env, timeoutMs: 300_000 });
          if (res.code !== 0) throw new Error(`plain.sh exited ${res.code}: ${tail(res.stderr || res.stdout)}`);
        };
        const ways = [
          { name: 'opsflow blueGreenDeploy', deploy: viaOpsflow, ms: [] as number[], failedRequests: 0 },
          { name: 'plain bash over ssh', deploy: viaScript, ms: [] as number[], failedRequests: 0 },
        ];
        try {
          await viaOpsflow(names[0]); // untimed: the first release on the nodes, nothing to switch from
          let next = 1;
          for (let round = 0; round < rounds; round++) {
            for (const way of ways) {
              const load = startLoad(hp.url, 120);
              way.ms.push(await timed(() => way.deploy(names[next++])));
              way.failedRequests += (await load.stop()).failed;
            }
          }
        } finally {
          await worker.stop();
        }
        for (const way of ways) {
          const s = summarize(way.ms);
          figures.push({ name: `${way.name}, ${NODES} nodes`, value: s.median, unit: 'ms', stats: s, note: `${way.failedRequests} failed request(s) under load` });
        }
        figures.push({ name: 'opsflow / plain bash (the price of durability)', value: summarize(ways[0].ms).median / summarize(ways[1].ms).median, unit: '×' });
        notes.push(`opsflow ran ${activities} activities per deploy (each a round trip through Temporal, see the overhead part) over one pooled SSH connection per node; the script opens a new OpenSSH connection for each of its 5 steps per node (6 on the blue node)`);
      });
    } finally {
      await haproxy?.stop();
      repo?.stop();
      for (const h of hosts) stopApp(nodeDir(h.dir));
    }
    notes.push('both: git clone + checkout + build on every node in parallel, smoke test on blue, then node by node drain → 0 sessions → maint → ln -s + mv -T → ctl.sh restart → health → ready → UP (HAProxy checks every 200 ms, rise 2), then prune');
    return { figures, notes };
  },
};

/** The test service detaches from ssh (setsid); stop it by its pid file so it does not outlive the part. */
function stopApp(dir: string): void {
  try {
    process.kill(Number(readFileSync(path.join(dir, 'app.pid'), 'utf8')), 'SIGTERM');
  } catch {
    // not running
  }
}
