// `npm run bench [-- PART... --quick --save-example NAME --keep-fleet]`: runs the benchmark parts, prints a
// table per part and writes the figures to bench/results/<timestamp>.json. See bench/README.md.
import './lib/setup';
import os from 'node:os';
import { removeScratch, stopBenchFleet } from './lib/fleet';
import { machine } from './lib/machine';
import { contextLine, renderPart, writeReport, type PartResult } from './lib/report';
import { cli } from './parts/cli';
import { cluster } from './parts/cluster';
import { datasync } from './parts/datasync';
import { deploy } from './parts/deploy';
import { fanout } from './parts/fanout';
import { gate } from './parts/gate';
import { overhead } from './parts/overhead';
import { parked } from './parts/parked';
import type { Part } from './parts/part';

// Parked and cluster last: they leave the most behind (thousands of closed runs) for nothing to inherit.
const PARTS: Part[] = [fanout, overhead, gate, cli, deploy, datasync, parked, cluster];

function usage(): string {
  return [
    'usage: npm run bench [-- [PART...] [--quick] [--save-example NAME] [--keep-fleet]]',
    '',
    ...PARTS.map((p) => `  ${p.name.padEnd(9)} ${p.describe}`),
    '',
    '  --quick              smaller sizes and fewer rounds (a look, not figures to quote)',
    '  --save-example NAME  also write bench/results/example-NAME.json (the committed example)',
    '  --keep-fleet         leave the bench sshd fleet running afterwards',
  ].join('\n');
}

function parseArgs(argv: string[]) {
  const opts = { parts: [] as Part[], quick: false, example: undefined as string | undefined, keepFleet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--keep-fleet') opts.keepFleet = true;
    else if (a === '--save-example') {
      opts.example = argv[++i];
      if (!opts.example || !/^[A-Za-z0-9._-]+$/.test(opts.example)) throw new Error('--save-example needs a NAME of letters, digits, ".", "_" or "-"');
    } else if (a === '--help' || a === '-h') {
      console.log(usage());
      process.exit(0);
    } else {
      const part = PARTS.find((p) => p.name === a);
      if (!part) throw new Error(`unknown part or option "${a}"\n\n${usage()}`);
      opts.parts.push(part);
    }
  }
  if (!opts.parts.length) opts.parts = PARTS;
  return opts;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opts = parseArgs(argv);
  const m = machine();
  const startedAt = new Date().toISOString();
  console.log(`opsflow bench: ${opts.parts.map((p) => p.name).join(', ')}${opts.quick ? ' (quick)' : ''} on ${contextLine(m, [])}`);
  if (m.loadAverage > 0.5) console.log(`warning: load average ${m.loadAverage} before the start: something else is busy, figures will be slower`);
  const results: PartResult[] = [];
  let failed = false;
  try {
    for (const part of opts.parts) {
      const load = os.loadavg()[0];
      const t0 = Date.now();
      try {
        const out = await part.run({ quick: opts.quick, machine: m });
        const result: PartResult = { part: part.name, context: contextLine(m, part.tools), figures: out.figures, notes: [...out.notes, `load average at the start of the part: ${load.toFixed(2)}`], elapsedMs: Date.now() - t0 };
        results.push(result);
        console.log(`\n${renderPart(result)}`);
      } catch (err) {
        failed = true;
        console.error(`\n== ${part.name} FAILED after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${(err as Error).stack ?? err}`);
      }
    }
  } finally {
    if (!opts.keepFleet) stopBenchFleet();
    removeScratch();
  }
  const files = writeReport({ startedAt, finishedAt: new Date().toISOString(), argv, quick: opts.quick, machine: m, parts: results }, opts.example);
  console.log(`\nfigures written to ${files.join(', ')}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error((err as Error).message);
    process.exit(2);
  },
);
