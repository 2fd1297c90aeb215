// Ansible ad-hoc (ansible-core), configured for speed as its documentation advises: pipelining on, no fact
// gathering, the Python interpreter named so there is no discovery round trip.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FleetHost } from '../../test/support/fleet';
import { BENCH_FLEET_PORT, benchFleet, scratchDir } from '../lib/fleet';
import { mapLimit } from '../lib/stats';
import { FANOUT, tail, type Contender } from './contender';
import { runProgram } from './spawn';

function writeInventory(dir: string, hosts: FleetHost[]): string {
  const f = benchFleet();
  const file = path.join(dir, `hosts-${hosts.length}.ini`);
  writeFileSync(
    file,
    [
      '[fleet]',
      ...hosts.map((h) => `${h.name} ansible_host=${h.address}`),
      '[fleet:vars]',
      `ansible_port=${BENCH_FLEET_PORT}`,
      `ansible_user=${f.user}`,
      `ansible_ssh_private_key_file=${f.identityFile}`,
      `ansible_ssh_common_args='-o UserKnownHostsFile=${f.knownHostsFile} -o StrictHostKeyChecking=yes'`,
      'ansible_python_interpreter=/usr/bin/python3',
      '',
    ].join('\n'),
  );
  return file;
}

/** Ends the ControlPersist masters a run left behind (each would otherwise linger 60 s and hold a session). */
async function closeMasters(controlDir: string): Promise<void> {
  const sockets = readdirSync(controlDir).map((s) => path.join(controlDir, s));
  await mapLimit(sockets, 20, (sock) => new Promise<void>((resolve) => {
    const p = spawn('ssh', ['-o', `ControlPath=${sock}`, '-O', 'exit', 'bench'], { stdio: 'ignore' });
    const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
    p.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  }));
}

export function ansible(module: 'raw' | 'command'): Contender {
  const dir = scratchDir('ansible');
  // An empty configuration file: neither /etc/ansible/ansible.cfg nor ~/.ansible.cfg may change the set-up.
  writeFileSync(path.join(dir, 'ansible.cfg'), '');
  const inventories = new Map<number, string>();
  return {
    name: `ansible -m ${module}`,
    async run(hosts, command) {
      const inventory = inventories.get(hosts.length) ?? writeInventory(dir, hosts);
      inventories.set(hosts.length, inventory);
      // A fresh control directory per run: no connection from an earlier run is reused.
      const controlDir = path.join(dir, `cp-${Date.now()}`);
      mkdirSync(controlDir);
      const env = {
        ...process.env,
        ANSIBLE_CONFIG: path.join(dir, 'ansible.cfg'),
        ANSIBLE_PIPELINING: 'True',
        ANSIBLE_GATHERING: 'explicit',
        ANSIBLE_HOST_KEY_CHECKING: 'True',
        ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
        ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'),
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_DEPRECATION_WARNINGS: 'False',
      };
      try {
        const res = await runProgram('ansible', ['all', '-i', inventory, '-f', String(FANOUT), '-o', '-m', module, '-a', command.join(' ')], { env, cwd: dir, timeoutMs: 600_000 });
        const ok = res.stdout.split('\n').filter((l) => / \| (CHANGED|SUCCESS) \| rc=0/.test(l)).length;
        if (res.code !== 0 || ok !== hosts.length) throw new Error(`ansible -m ${module} exited ${res.code} with ${ok}/${hosts.length} hosts ok: ${tail(res.stdout + res.stderr)}`);
      } finally {
        await closeMasters(controlDir);
        rmSync(controlDir, { recursive: true, force: true });
      }
    },
  };
}
