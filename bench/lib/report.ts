// Figures as the parts produce them, printed as tables and written as JSON. Every table is headed by the core
// count and the versions of what it compares, so a figure is never read without them.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Machine } from './machine';
import type { Summary } from './stats';

export interface Figure {
  name: string;
  /** The headline number: the median when the measurement was repeated. */
  value: number;
  unit: 'ms' | 'MiB' | 'KiB' | '×' | '/s' | 'count';
  stats?: Summary;
  note?: string;
}

export interface PartResult {
  part: string;
  /** Cores, CPU and the versions compared, printed above the part's table. */
  context: string;
  figures: Figure[];
  notes: string[];
  /** Wall time of the whole part, set-up included. */
  elapsedMs: number;
}

export type Tool = 'opsflow' | 'pdsh' | 'ansible' | 'openssh' | 'haproxy' | 'temporal' | 'rclone' | 'postgresql';

/** "2 cores (AMD EPYC), Debian 12; opsflow: node v20, Temporal SDK 1.24.0, … vs pdsh-2.34 (OpenSSH_9.2p1)". */
export function contextLine(m: Machine, tools: Tool[]): string {
  const v = m.versions;
  const names: Record<Tool, string> = {
    opsflow: `opsflow (node ${v.node}, Temporal SDK ${v.temporalSdk}, ssh2 ${v.ssh2})`,
    temporal: `temporal CLI ${v.temporalCli}`,
    pdsh: v.pdsh,
    ansible: v.ansible,
    openssh: v.openssh,
    haproxy: v.haproxy,
    rclone: v.rclone,
    postgresql: v.postgresql,
  };
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryMiB} MiB, ${m.os}, loopback quickack ${m.loopbackQuickack ? 'on' : 'off'}; ${tools.map((t) => names[t]).join('; ')}`;
}

export function format(value: number, unit: Figure['unit']): string {
  if (!Number.isFinite(value)) return '—';
  switch (unit) {
    case 'ms':
      return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
    case '×':
      return `${value.toFixed(2)}×`;
    case 'MiB':
    case 'KiB':
      return `${value.toFixed(1)} ${unit}`;
    case '/s':
      return `${value.toFixed(1)}/s`;
    case 'count':
      return String(value);
  }
}

function pad(cells: string[][]): string {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((r) => r.map((cell, c) => (c === 0 || c === r.length - 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd()).join('\n');
}

export function renderPart(r: PartResult): string {
  const rows = [['measurement', 'median', 'p95', 'p99', 'n', 'note']];
  for (const f of r.figures) {
    const s = f.stats;
    rows.push([f.name, format(f.value, f.unit), s && s.n > 1 ? format(s.p95, f.unit) : '', s && s.n > 1 ? format(s.p99, f.unit) : '', s ? String(s.n) : '', f.note ?? '']);
  }
  return [`== ${r.part} (${(r.elapsedMs / 1000).toFixed(0)} s)`, `   ${r.context}`, pad(rows), ...r.notes.map((n) => `   note: ${n}`)].join('\n');
}

export interface RunReport {
  startedAt: string;
  finishedAt: string;
  argv: string[];
  quick: boolean;
  machine: Machine;
  parts: PartResult[];
}

/** bench/results/<timestamp>.json (git-ignored), and example-<name>.json when asked for one to commit. */
export function writeReport(report: RunReport, exampleName?: string): string[] {
  const dir = path.join(__dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const files = [path.join(dir, `${report.startedAt.replace(/[:.]/g, '-')}.json`)];
  if (exampleName) files.push(path.join(dir, `example-${exampleName}.json`));
  for (const f of files) writeFileSync(f, json);
  return files;
}
