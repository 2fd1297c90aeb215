// Part cli: the wall time of `opsflow status`, `approve` (unsigned, and signed with --key) and `list` at a
// terminal, a new node process each time, against a local dev server; beside the same commands from the sources
// through tsx (what bin/opsflow.js falls back to when dist/ is missing or out of date), the temporal CLI, and
// node starting with nothing to do. The runs sit at approval gates with a quorum of 20, so every approve is
// answered and the gate stays open.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { findTemporalCli } from '../../src/temporal/binary';
import type { fleetRun } from '../../src/workflows/fleetRun';
import { runProgram } from '../contenders/spawn';
import { tail } from '../contenders/contender';
import { scratchDir } from '../lib/fleet';
import type { Figure } from '../lib/report';
import { summarize, timed } from '../lib/stats';
import { startOpsWorker, uniqueId, withTemporal } from '../lib/temporal';
import { isGateOpen } from './gate';
import type { Part, PartOutput } from './part';

const ROOT = path.resolve(__dirname, '../..');
const QUORUM = 20;
const ENVIRONMENT = 'cli';

export interface Launcher {
  name: string;
  /** node's arguments before the command's own words. */
  argv: string[];
}

export const LAUNCHERS: Launcher[] = [
  { name: 'node bin/opsflow.js', argv: [path.join(ROOT, 'bin/opsflow.js')] },
  { name: 'tsx (sources)', argv: ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')] },
];

/** People `<prefix>1..20`; the signed ones get an ed25519 key each, listed in the inventory. */
function people(dir: string, prefix: string, signed: boolean): { names: string[]; entries: Record<string, { keys?: string[] }> } {
  const names = Array.from({ length: QUORUM }, (_, i) => `${prefix}${i + 1}`);
  const entries: Record<string, { keys?: string[] }> = {};
  for (const n of names) {
    if (signed) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', n, '-f', path.join(dir, n)]);
    entries[n] = signed ? { keys: [readFileSync(path.join(dir, `${n}.pub`), 'utf8').trim()] } : {};
  }
  return { names, entries };
}

/** Median wall times per command and launcher, and of the floors (node, the temporal CLI), over `rounds` rounds. */
export async function measureCli(launchers: Launcher[], rounds: number): Promise<Figure[]> {
  if (rounds > QUORUM - 2) throw new Error(`at most ${QUORUM - 2} rounds: each approves a run with a quorum of ${QUORUM} once more`);
  const dir = scratchDir('cli');
  const unsigned = people(dir, 'u', false);
  const signed = people(dir, 's', true);
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, '');
  const inventory = path.join(dir, 'inventory.yaml');
  // The runs never get past their gate, so the one host is never contacted.
  writeFileSync(inventory, stringify({ knownHosts, people: { ...unsigned.entries, ...signed.entries }, environments: { [ENVIRONMENT]: { hosts: { h1: { address: '127.0.0.1', port: 1, user: 'nobody', agent: true } } } } }));
  return withTemporal(async (t) => {
    const worker = await startOpsWorker(t, inventory);
    try {
      const parked = async (approvers: string[]) => {
        const handle = await t.client.workflow.start<typeof fleetRun>('fleetRun', {
          taskQueue: worker.taskQueue,
          workflowId: uniqueId('cli'),
          args: [{ environment: ENVIRONMENT, target: { hosts: ['h1'] }, command: ['true'], approval: { approvers, quorum: QUORUM } }],
        });
        for (let i = 0; !(await isGateOpen(handle)); i++) {
          if (i > 600) throw new Error(`${handle.workflowId}: gate "run" not open after 60 s`);
          await new Promise((r) => setTimeout(r, 100));
        }
        return handle.workflowId;
      };
      const env = { ...process.env, TEMPORAL_ADDRESS: t.address, SSH_AUTH_SOCK: '' };
      const run = async (cmd: string, argv: string[]) => {
        let res: Awaited<ReturnType<typeof runProgram>> | undefined;
        const ms = await timed(async () => (res = await runProgram(cmd, argv, { env, cwd: ROOT, timeoutMs: 60_000 })));
        if (res?.code !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${res?.code}: ${tail(res?.stderr || res?.stdout || '')}`);
        return ms;
      };
      // Each launcher answers its own two runs, each approve by the next person, so none reaches the quorum.
      const commands = await Promise.all(
        launchers.map(async (l) => {
          const [plain, withKeys] = [await parked(unsigned.names), await parked(signed.names)];
          let n = 0;
          return [
            { name: `status: ${l.name}`, argv: () => [...l.argv, 'status', plain] },
            { name: `list: ${l.name}`, argv: () => [...l.argv, 'list', '--limit', '5'] },
            { name: `approve (unsigned): ${l.name}`, argv: () => [...l.argv, 'approve', plain, '--gate', 'run', '--by', unsigned.names[n]] },
            { name: `approve (signed, --key): ${l.name}`, argv: () => [...l.argv, 'approve', withKeys, '--gate', 'run', '--by', signed.names[n], '--key', path.join(dir, signed.names[n++])] },
          ];
        }),
      );
      const temporal = findTemporalCli();
      const floors: { name: string; cmd: string; argv: () => string[] }[] = [{ name: 'node -e 0', cmd: process.execPath, argv: () => ['-e', '0'] }];
      if (temporal) {
        const some = commands[0][0].argv().pop() as string;
        floors.push({ name: 'temporal workflow describe', cmd: temporal, argv: () => ['workflow', 'describe', '--address', t.address, '-w', some] });
        floors.push({ name: 'temporal workflow list', cmd: temporal, argv: () => ['workflow', 'list', '--address', t.address, '--limit', '5'] });
      }
      const all = [...commands.flat().map((c) => ({ ...c, cmd: process.execPath })), ...floors];
      const times = new Map<string, number[]>(all.map((c) => [c.name, []]));
      // Interleaved, command by command within a round, so a change in the machine's load hits all of them alike;
      // one untimed round first (disk cache, tsx's compile cache).
      for (let round = 0; round <= rounds; round++) {
        for (const c of all) {
          const ms = await run(c.cmd, c.argv());
          if (round > 0) times.get(c.name)?.push(ms);
        }
      }
      return [...times].map(([name, values]) => {
        const s = summarize(values);
        return { name, value: s.median, unit: 'ms' as const, stats: s };
      });
    } finally {
      await worker.stop();
    }
  });
}

export const cli: Part = {
  name: 'cli',
  describe: 'wall time of `opsflow status`, `approve` (unsigned, signed) and `list`, from dist/ and through tsx, against a local server',
  tools: ['opsflow', 'temporal'],
  async run(ctx): Promise<PartOutput> {
    const figures = await measureCli(LAUNCHERS, ctx.quick ? 5 : 10);
    const notes = [
      'wall time of a new process per call, from spawn to exit: node start, loading the CLI, one connection to the dev server, the call',
      'bin/opsflow.js runs dist/ only when scripts/setup.sh built it from the current sources; otherwise it is the tsx row',
      'approve (signed) signs with an ed25519 key file (no agent): it loads the signing code and queries the run twice more',
    ];
    return { figures, notes };
  },
};
