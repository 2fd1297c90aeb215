// `opsflow sandbox up|down|status`: the loopback world of src/sandbox/, loaded only when one of these runs.
import type { Command } from 'commander';

export function registerSandboxCommands(program: Command): void {
  const sandbox = () => import('../sandbox/sandbox');
  const cmd = program.command('sandbox').description('web nodes, HAProxy, the demo app and a hot standby on loopback, to try the runbooks on (see the README tour)');
  cmd
    .command('up')
    .description('start the sandbox (idempotent; as root) and write sandbox/inventory.yaml and examples/sandbox/')
    .action(async () => console.log(await (await sandbox()).sandboxUp()));
  cmd
    .command('status')
    .description('what the sandbox runs, and where')
    .action(async () => console.log(await (await sandbox()).sandboxStatus()));
  cmd
    .command('down')
    .description('stop every process of the sandbox (its files stay, so the next up is quick)')
    .action(async () => console.log(await (await sandbox()).sandboxDown()));
}
