// Debian's pdsh over OpenSSH: the classic parallel shell, and the speed opsflow is held to.
import { benchFleet, sshOptions } from '../lib/fleet';
import { FANOUT, tail, type Contender } from './contender';
import { runProgram } from './spawn';

/**
 * `kex`: OpenSSH's key exchange. Its default (sntrup761x25519, post-quantum) costs far more CPU than the
 * curve25519 that ssh2 — so opsflow and the floor — uses; the variant with curve25519 separates that cost from
 * everything else pdsh does.
 */
export function pdsh(kex?: string): Contender {
  return {
    name: kex ? `pdsh, kex ${kex}` : 'pdsh',
    async run(hosts, command) {
      const options = [...sshOptions(), ...(kex ? ['-o', `KexAlgorithms=${kex}`] : [])];
      const env = { ...process.env, PDSH_SSH_ARGS_APPEND: options.join(' ') };
      // -S: exit with the largest remote status, so a host that failed (ssh's 255 included) fails the run.
      const res = await runProgram('pdsh', ['-R', 'ssh', '-f', String(FANOUT), '-S', '-l', benchFleet().user, '-w', hosts.map((h) => h.address).join(','), command.join(' ')], { env, timeoutMs: 300_000 });
      if (res.code !== 0) throw new Error(`pdsh exited ${res.code}: ${tail(res.stderr || res.stdout)}`);
      const answered = new Set(res.stdout.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf(':'))));
      if (answered.size && answered.size !== hosts.length) throw new Error(`pdsh: ${answered.size} of ${hosts.length} hosts answered`);
    },
  };
}
