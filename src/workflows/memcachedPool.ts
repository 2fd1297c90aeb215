import { upsertSearchAttributes } from '@temporalio/workflow';
import { commandLine } from '../common/command';
import { SA_ENVIRONMENT, SA_SERVICE } from '../common/constants';
import { fileWasUnchanged, restoreFileArgv, writeFileArgv } from '../common/writeFile';
import { memcachedPoolInput, type MemcachedPoolInput } from '../schemas/memcachedPool';
import type { ServiceCheck } from '../schemas/rollingUpgrade';
import { parseInput } from '../schemas/validate';
import { Runbook } from '../runbook';
import { hostActs, upgradeInOrder, type RollingUpgradeResult } from './rollingUpgrade';

/**
 * Replaces servers of a memcached pool (the Open Library runbook): checks the new server, then — as a rolling
 * upgrade of the client hosts, one at a time behind the same approval and failure gates — writes the new pool
 * into each client's configuration file atomically, restarts its services and verifies a write and a read
 * through the application. The new server is checked before and after every client too. A run that ends early
 * (a failure, an abort, a cancel) puts the previous pool file back on every client it changed.
 */
export async function memcachedPool(rawInput: MemcachedPoolInput): Promise<RollingUpgradeResult> {
  const input = parseInput('memcachedPool', memcachedPoolInput, rawInput);
  const { environment } = input;
  upsertSearchAttributes([
    { key: SA_ENVIRONMENT, value: environment },
    { key: SA_SERVICE, value: 'memcached' },
  ]);
  const rb = new Runbook({ workflow: 'memcachedPool', environment, service: 'memcached', requestedBy: input.requestedBy, dryRun: input.dryRun, failure: input.failure, announce: !input.dryRun, notify: input.notify });
  const serverChecks: ServiceCheck[] = input.newServers.map((s) => ({ kind: 'memcached', ...s }));
  const servers = input.newServers.map((s) => `${s.host}:${s.port}`).join(', ');
  const content = input.config.content.split('{servers}').join(JSON.stringify(input.pool));

  return upgradeInOrder(
    rb,
    {
      environment,
      order: input.clients,
      waveSize: 1,
      rollbackPlan: input.rollbackPlan,
      upgrade: { command: writeFileArgv(input.config.path, content, input.restart), sudo: input.sudo, timeout: '10m' },
      packages: [],
      checks: [...serverChecks, { kind: 'command', command: input.verify, sudo: false }],
      checksTimeout: input.checksTimeout,
      approval: input.approval,
      dryRun: input.dryRun,
      requestedBy: input.requestedBy,
      failure: input.failure,
      notify: input.notify,
    },
    {
      upgradeLabel: `write the pool ${input.pool.join(', ')} into ${input.config.path}, then ${commandLine({ argv: input.restart, sudo: input.sudo })}`,
      // Ending early (abort, cancel) puts every client that got the new pool back on the old one: a pool is only
      // consistent when all clients agree on it.
      undo: { label: (host) => `put the previous ${input.config.path} back on ${host} and restart`, command: restoreFileArgv(input.config.path, content, input.restart), unchanged: fileWasUnchanged },
      beforePlan: `check the new server(s) ${servers}: version, stats (memory limit), set and get`,
      before: async () => {
        const results = await rb.step('check new servers', () => hostActs.runChecks({ environment, host: 'new server', address: input.newServers[0].host, checks: serverChecks, timeoutMs: 0 }), { required: true });
        return `New server(s):\n${results.map((r) => `${r.check}: ${r.detail}`).join('\n')}`;
      },
    },
  );
}
