// What the figures were measured on: they mean little without the cores, the CPU and the versions compared.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { findTemporalCli, TEMPORAL_CLI_MODULE } from '../../src/temporal/binary';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryMiB: number;
  os: string;
  kernel: string;
  /** Loopback routes with `quickack 1` remove the 40 ms delayed-ACK stalls (test/fleet/README.md). */
  loopbackQuickack: boolean;
  /** 1-minute load average when the run started: another busy process skews every figure. */
  loadAverage: number;
  versions: Record<string, string>;
}

/** First line a command prints, on stdout or stderr (`ssh -V` and `pdsh -V` use stderr), or "absent". */
function firstLine(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  if (res.error) return 'absent';
  return `${res.stdout}\n${res.stderr}`.trim().split('\n')[0] || 'absent';
}

const pkg = (name: string) => (require(`${name}/package.json`) as { version: string }).version;

function osName(): string {
  const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
  return m?.[1] ?? os.type();
}

let cached: Machine | undefined;

export function machine(): Machine {
  if (cached) return cached;
  const cli = findTemporalCli();
  const routes = firstLine('ip', ['route', 'show', 'table', 'local', '127.0.0.0/8']);
  cached = {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    os: osName(),
    kernel: os.release(),
    loopbackQuickack: /quickack 1/.test(routes),
    loadAverage: Number(os.loadavg()[0].toFixed(2)),
    versions: {
      node: process.version,
      temporalCli: cli ? `${firstLine(cli, ['--version'])} [built from ${TEMPORAL_CLI_MODULE}]` : 'SDK download',
      temporalSdk: pkg('@temporalio/worker'),
      ssh2: pkg('ssh2'),
      pdsh: firstLine('pdsh', ['-V']),
      ansible: firstLine('ansible', ['--version']),
      openssh: firstLine('ssh', ['-V']),
      haproxy: firstLine('haproxy', ['-v']),
      rclone: firstLine('rclone', ['version']),
      postgresql: firstLine('pg_dump', ['--version']),
    },
  };
  return cached;
}
