// What bounds the worker's memory when many runs wait at gates. The SDK runs every workflow in one V8 isolate on a
// worker thread, and each cached run holds its own instance of every module of the workflow bundle (the input
// schemas above all): about 1.75 MiB of live heap a run. Capping the cache bounds what is live, not the heap: V8
// lets a heap grow up to four times what is live before its next full collection, and replaying evicted runs (a
// status query or an answer each) makes garbage quickly, so with 250 runs cached the thread's heap reached 1.9 GiB
// between collections (live: 480 MiB). bench `parked` has the figures; docs/performance.md#parked-runs.
import { setFlagsFromString } from 'node:v8';

/**
 * Runs kept in memory between tasks. Past the cap the least recently used run is evicted and replays its history
 * when its gate is answered (about 0.1 s at 1,000 parked runs). Each cached run costs about 2.6 MiB of resident
 * memory (1.75 MiB live, collected at 1.5 times that); with 150 the worker stayed under 910 MiB with 1,000 runs parked
 * and with 5,000 started (docs/performance.md#parked-runs).
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 150;

/**
 * A full collection once a heap is half again its live size, instead of V8's up to four times: the workflow
 * thread's heap follows the cache instead of the garbage. It costs that thread more frequent collections (one
 * every few seconds while hundreds of runs replay, tens of ms of pause each). V8 flags are per process and read at
 * each collection, so this also applies to the main thread, whose heap is small.
 */
export const HEAP_GROWING_PERCENT = 50;

export function boundHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/**
 * Workflow tasks the worker takes at once (the SDK's default is 40). They all wait for the one workflow thread, and
 * a task not finished within its 10 s timeout is taken away and retried: with 40 taken while the thread replays
 * evicted runs (a few hundred ms each on a busy machine), tasks timed out again and again (a run's task failed 10
 * attempts with the cache at 50 and 1,000 runs polled for status). Ten keep the queue inside the timeout; the
 * others wait at the server, where no timeout runs.
 */
export const WORKFLOW_TASK_SLOTS = 10;
