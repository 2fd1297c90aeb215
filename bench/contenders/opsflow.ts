// opsflow's fleetRun, timed from the start request to the result, against a local dev server and a worker in
// this process: what an operator waits for, workflow and activity round trips included.
import type { fleetRun } from '../../src/workflows/fleetRun';
import { ENVIRONMENT } from '../lib/fleet';
import { uniqueId, type BenchTemporal, type RunningWorker } from '../lib/temporal';
import { FANOUT, type Contender } from './contender';

/**
 * Cold (the default): the worker's SSH pool is closed before each run, as every other contender starts
 * without a connection. Warm: the connections the previous run left open are used, as for back-to-back runs
 * within the pool's idle time (30 s) in production.
 */
export function opsflow(t: BenchTemporal, worker: RunningWorker, pool: 'cold' | 'warm' = 'cold'): Contender {
  return {
    name: pool === 'cold' ? 'opsflow fleetRun' : 'opsflow fleetRun, warm pool',
    async run(hosts, command) {
      const result = await t.client.workflow.execute<typeof fleetRun>('fleetRun', {
        taskQueue: worker.taskQueue,
        workflowId: uniqueId('fanout'),
        args: [{ environment: ENVIRONMENT, target: { hosts: hosts.map((h) => h.name) }, command, concurrency: FANOUT, failure: { onFailure: 'fail' } }],
      });
      if (!result.ok || result.summary.succeeded !== hosts.length) throw new Error(`fleetRun: ${JSON.stringify(result.summary)} ${result.hosts.find((h) => h.error)?.error?.message ?? ''}`);
    },
    reset: pool === 'cold' ? () => worker.ssh.closeAll() : undefined,
  };
}
