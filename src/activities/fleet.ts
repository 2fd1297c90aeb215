// Activities that act on hosts over SSH. A fleet command is one activity for the whole batch, with per-host
// progress in its heartbeats: a Temporal round trip per host would cost more than the command itself, and the
// remote run guard makes the batch safe to retry after a crash.
import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { Inventory, ResolvedHost } from '../config/inventory';
import type { Target } from '../schemas/common';
import { HostIdentityMismatch, OpsError, SshError } from '../common/errors';
import type { SshPool } from './ssh/pool';
import type { RemoteCommand } from '../common/command';
import { fillKnown } from '../config/services';
import { OutcomeUnknownError, runGuarded, stepKey, type RanOn, type RemoteOutcome } from './ssh/remoteRun';

export interface HostRunResult extends Omit<RemoteOutcome, 'attempt' | 'ranOn'> {
  host: string;
  state: 'succeeded' | 'failed' | 'not-started';
  /** The host key and boot id of the machine the command ran on; absent when it did not run. */
  ranOn?: RanOn;
  /** An earlier attempt on this same host (same host key, same boot) ran the command; this result was collected from it, the command did not run twice. */
  resumed: boolean;
  startedAt?: string;
  endedAt?: string;
  error?: { type: string; message: string };
}

export interface RunOnHostsInput {
  hosts: ResolvedHost[];
  command: RemoteCommand;
  /** Names this attempt of the step on every host; the same key never runs the command twice. */
  step: string;
  concurrency: number;
  /** Stop starting hosts once more than this many have failed. */
  maxErrors: number;
  timeoutMs: number;
  capBytes: number;
}

export interface FleetProgress {
  total: number;
  done: number;
  failed: number;
  running: string[];
}

const CONNECT_ATTEMPTS = 3;

function notStarted(host: string): HostRunResult {
  return { host, state: 'not-started', exitCode: null, signal: null, timedOut: false, stdout: '', stderr: '', truncated: false, resumed: false };
}

export function createFleetActivities(deps: { inventory: Inventory; ssh: SshPool }) {
  const { inventory, ssh } = deps;

  async function runOne(host: ResolvedHost, input: RunOnHostsInput, run: { workflowId: string; runId: string }, signal: AbortSignal): Promise<HostRunResult> {
    const startedAt = new Date().toISOString();
    const base = { ...notStarted(host.name), startedAt };
    const conn = { ...inventory.connection(host.environment, host.name), address: host.address, port: host.port, user: host.user };
    const vars = inventory.placeholders(host.environment, host.name);
    const command = { ...input.command, argv: input.command.argv.map((a) => fillKnown(a, vars)) };
    const guard = { host: host.name, key: stepKey(run.workflowId, run.runId, input.step, host.name), bootIdFile: conn.bootIdFile, timeoutMs: input.timeoutMs, capBytes: input.capBytes, signal };
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await ssh.shell(conn, (shell) => runGuarded(shell, command, guard));
        const ok = outcome.exitCode === 0 && !outcome.timedOut;
        return {
          ...base,
          state: ok ? 'succeeded' : 'failed',
          exitCode: outcome.exitCode,
          signal: outcome.signal,
          timedOut: outcome.timedOut,
          stdout: outcome.stdout,
          stderr: outcome.stderr,
          truncated: outcome.truncated,
          ranOn: outcome.ranOn,
          resumed: outcome.attempt === 'resumed',
          endedAt: new Date().toISOString(),
          ...(ok ? {} : { error: { type: outcome.timedOut ? 'TimedOut' : 'NonZeroExit', message: outcome.timedOut ? `timed out after ${input.timeoutMs} ms` : outcome.signal ? `killed by ${outcome.signal}` : `exit code ${outcome.exitCode}` } }),
        };
      } catch (err) {
        if (signal.aborted) throw err;
        const final = err instanceof OutcomeUnknownError || err instanceof HostIdentityMismatch;
        const retryable = err instanceof SshError ? err.retryable : !final;
        if (retryable && attempt < CONNECT_ATTEMPTS) {
          await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
          continue;
        }
        const type = err instanceof OpsError ? err.type : final ? 'OutcomeUnknown' : 'SshFailed';
        return { ...base, state: 'failed', endedAt: new Date().toISOString(), error: { type, message: (err as Error).message } };
      }
    }
  }

  return {
    /** Turns a target into hosts; what it returns is recorded in history, so the run's scope is auditable. */
    async resolveTargets(input: { environment: string; target: Target }): Promise<ResolvedHost[]> {
      const hosts = inventory.resolve(input.environment, input.target);
      // Refused here, before any host is touched, rather than host by host in the middle of the run.
      for (const h of hosts) await ssh.admit(inventory.connection(input.environment, h.name));
      return hosts;
    },

    async runOnHosts(input: RunOnHostsInput): Promise<HostRunResult[]> {
      const ctx = Context.current();
      const execution = ctx.info.workflowExecution;
      const run = { workflowId: execution?.workflowId ?? ctx.info.activityId, runId: execution?.runId ?? '' };
      const results: HostRunResult[] = input.hosts.map((h) => notStarted(h.name));
      const progress: FleetProgress = { total: input.hosts.length, done: 0, failed: 0, running: [] };
      const beat = () => ctx.heartbeat(progress);
      // Every host in flight listens for cancellation; past Node's default of 10 it would warn of a leak.
      setMaxListeners(input.concurrency + 10, ctx.cancellationSignal);
      // Heartbeats also carry cancellation to us, so keep them flowing while long commands run.
      const ticker = setInterval(beat, 2_000);
      let next = 0;
      const lane = async () => {
        while (next < input.hosts.length && progress.failed <= input.maxErrors && !ctx.cancellationSignal.aborted) {
          const i = next++;
          const host = input.hosts[i];
          progress.running.push(host.name);
          const result = await runOne(host, input, run, ctx.cancellationSignal);
          results[i] = result;
          progress.running = progress.running.filter((h) => h !== host.name);
          progress.done++;
          if (result.state === 'failed') progress.failed++;
          beat();
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(input.concurrency, input.hosts.length) }, lane));
      } finally {
        clearInterval(ticker);
      }
      if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new CancelledFailure('cancelled');
      return results;
    },
  };
}
