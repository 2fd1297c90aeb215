// Part 1, fanout: `true` and `uname -r` on 20, 100 and 200 real sshd hosts, 50 at a time, by opsflow's
// fleetRun, pdsh, Ansible (raw and command modules) and bare ssh2 (the floor). Every contender starts with no
// connection open; each cell is the median of a few rounds, contenders interleaved so drift hits all alike.
import { ansible } from '../contenders/ansible';
import type { Contender } from '../contenders/contender';
import { floor } from '../contenders/floor';
import { opsflow } from '../contenders/opsflow';
import { pdsh } from '../contenders/pdsh';
import { firstHosts, writeOpsInventory } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { summarize, timed, type Bound } from '../lib/stats';
import { startOpsWorker, withTemporal } from '../lib/temporal';
import type { Part, PartOutput } from './part';

const COMMANDS = [['true'], ['uname', '-r']];
/** The targets, at 100 hosts. */
const TARGET = { hosts: 100, vsPdsh: 1.5, vsAnsible: 3 };

async function measure(contenders: Contender[], hosts: number, command: string[], bound: Bound): Promise<Map<string, number[]>> {
  const samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
  const spent = new Map(contenders.map((c) => [c.name, 0]));
  for (let round = 0; round < bound.times; round++) {
    for (const c of contenders) {
      // Every contender gets one round; the slow ones stop repeating once their time budget is spent.
      if (round > 0 && (spent.get(c.name) as number) >= bound.budgetMs) continue;
      await c.reset?.();
      const ms = await timed(() => c.run(firstHosts(hosts), command));
      samples.get(c.name)?.push(ms);
      spent.set(c.name, (spent.get(c.name) as number) + ms);
    }
  }
  return samples;
}

export const fanout: Part = {
  name: 'fanout',
  describe: 'true / uname -r on 20, 100, 200 sshd hosts: opsflow fleetRun vs pdsh vs ansible vs bare ssh2',
  tools: ['opsflow', 'temporal', 'pdsh', 'ansible', 'openssh'],
  async run(ctx): Promise<PartOutput> {
    const sizes = ctx.quick ? [20, 100] : [20, 100, 200];
    // Up to 3 rounds, but a contender stops repeating once it has spent 8 s on a cell: Ansible at 100 and 200
    // hosts runs once (12–60 s a run); even so, its single runs are most of the part's 8–9 minutes.
    const bound: Bound = ctx.quick ? { times: 1, budgetMs: 0 } : { times: 3, budgetMs: 8_000 };
    const figures: Figure[] = [];
    const notes: string[] = [];
    await withTemporal(async (t) => {
      const worker = await startOpsWorker(t, writeOpsInventory());
      const ops = opsflow(t, worker);
      // Right after the cold run, so it finds the cold run's connections still open.
      const warm = opsflow(t, worker, 'warm');
      // pdsh with ssh2's key exchange explains the pdsh ratio; it runs where the targets are judged.
      const sameKex = pdsh('curve25519-sha256');
      const all = [ops, warm, pdsh(), sameKex, ansible('raw'), ansible('command'), floor()];
      const at = (hosts: number) => all.filter((c) => c !== sameKex || hosts === TARGET.hosts);
      try {
        // One untimed round on a few hosts: the worker's first workflow task and Ansible's first Python
        // imports are start-up costs, not fan-out.
        for (const c of all) await c.run(firstHosts(5), ['true']);
        for (const hosts of sizes) {
          const contenders = at(hosts);
          for (const command of COMMANDS) {
            const samples = await measure(contenders, hosts, command, bound);
            const label = `${hosts} hosts, ${command.join(' ')}`;
            const med = (c: Contender) => summarize(samples.get(c.name) as number[]).median;
            for (const c of contenders) {
              const s = summarize(samples.get(c.name) as number[]);
              figures.push({ name: `${label}: ${c.name}`, value: s.median, unit: 'ms', stats: s });
            }
            for (const other of contenders.filter((c) => c !== ops && c !== warm)) figures.push({ name: `${label}: opsflow / ${other.name}`, value: med(ops) / med(other), unit: '×' });
            if (hosts === TARGET.hosts) {
              const named = (name: string) => med(contenders.find((c) => c.name === name) as Contender);
              const vsPdsh = med(ops) / named('pdsh');
              const vsAnsible = Math.min(named('ansible -m raw'), named('ansible -m command')) / med(ops);
              notes.push(
                `${label}: opsflow is ${vsPdsh.toFixed(2)}× pdsh (target ≤ ${TARGET.vsPdsh}×: ${vsPdsh <= TARGET.vsPdsh ? 'met' : 'MISSED'}) and ${vsAnsible.toFixed(2)}× faster than the faster Ansible module (target ≥ ${TARGET.vsAnsible}×: ${vsAnsible >= TARGET.vsAnsible ? 'met' : 'MISSED'})`,
              );
            }
          }
        }
      } finally {
        await worker.stop();
      }
    });
    notes.push('each contender starts with no SSH connection open (opsflow: pool closed before each run; Ansible: fresh ControlPath directory)');
    notes.push('OpenSSH (pdsh, Ansible) negotiates sntrup761x25519-sha512 key exchange by default; ssh2 (opsflow, floor) has no post-quantum kex and uses curve25519-sha256, as does the "pdsh, kex curve25519-sha256" row');
    notes.push('ratios are of medians: opsflow fleetRun (cold) / the other; below 1 means opsflow was faster');
    return { figures, notes };
  },
};
