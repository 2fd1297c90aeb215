// The parent's side of the parked part's worker process: start it, ask for its memory, stop it.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir } from '../lib/fleet';
import { OPSFLOW_WORKFLOWS, uniqueId, workflowBundle } from '../lib/temporal';
import type { MemoryReport } from './childWorker';

export interface ChildWorker {
  taskQueue: string;
  maxCachedWorkflows: number;
  memory(): Promise<MemoryReport>;
  stop(): Promise<void>;
}

function once<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`worker process: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: { type?: string }) => m?.type === type && done(undefined, m as T);
    const onExit = (code: number | null) => done(new Error(`worker process exited (${code}) before "${type}"`));
    function done(err?: Error, value?: T) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(value as T);
    }
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** `maxCachedWorkflows` absent: the worker's own default (OPSFLOW_WORKER_CACHE or DEFAULT_MAX_CACHED_WORKFLOWS). */
export async function startChildWorker(address: string, inventoryFile: string, maxCachedWorkflows?: number, taskQueue = uniqueId('parked')): Promise<ChildWorker> {
  // The bundle is built once by this process; the child loads it instead of bundling again.
  const bundle = path.join(scratchDir('bundle'), 'workflows.js');
  writeFileSync(bundle, (await workflowBundle(OPSFLOW_WORKFLOWS)).code);
  const child = fork(path.join(__dirname, 'childWorker.ts'), [address, inventoryFile, taskQueue, bundle, ...(maxCachedWorkflows === undefined ? [] : [String(maxCachedWorkflows)])], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await once<{ maxCachedWorkflows: number }>(child, 'ready', 60_000);
  return {
    taskQueue,
    maxCachedWorkflows: ready.maxCachedWorkflows,
    async memory() {
      const reply = once<MemoryReport>(child, 'memory', 10_000);
      child.send({ type: 'memory' });
      return reply;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
