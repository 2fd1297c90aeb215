// The nightly schedules as real Temporal Schedules: created from the inventory with a cron spec in the system's time
// zone, triggered, a second run skipped while the first still goes (overlap SKIP: the first waits on the rclone lock
// this test holds), paused and resumed by a workflow; and the `opsflow schedule` commands.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { applySchedules, desiredSchedules, listSchedules } from '../src/cli/schedule';
import { runCli } from '../src/cli/main';
import { loadInventory, type Inventory } from '../src/config/inventory';
import type { pauseDataSync } from '../src/workflows/pauseDataSync';
import { artifactsDir, makeTree, writeDataInventory } from './support/data';
import { failureOf, recordHistory, startWorker, testEnv, unique, waitFor } from './support/harness';

let env: TestWorkflowEnvironment;
let worker: { stop(): Promise<void> };
let inventory: Inventory;
let lockHolder: ChildProcess | undefined;
const queue = unique('schedules');
const art = artifactsDir('schedules');
const SYSTEM = unique('sched');
const FILES = `opsflow:${SYSTEM}:files`;
const greenDir = path.join(art, 'green');

beforeAll(async () => {
  env = await testEnv();
  // The in-process worker's rclone locks live here (on hosts, the fleet sets it per host).
  process.env.OPSFLOW_STATE_DIR = path.join(art, 'state');
  process.env.TEMPORAL_ADDRESS = inject('temporalAddress');
  process.env.OPSFLOW_TASK_QUEUE = queue;
  makeTree(path.join(art, 'blue'), { small: 20, large: 0, largeMb: 0 });
  const file = writeDataInventory({
    aws: { none: { region: 'us-east-1' } },
    systems: {
      [SYSTEM]: {
        timezone: 'Europe/Paris',
        infrastructures: { blue: { aws: 'none', files: path.join(art, 'blue') }, green: { aws: 'none', files: greenDir } },
        roles: { production: 'blue', standby: 'green' },
        schedules: { files: '30 2 * * *', catchupWindow: '10m' },
      },
      broken: {
        infrastructures: { blue: { aws: 'none' }, green: { aws: 'none' } },
        roles: { production: 'blue', standby: 'green' },
        schedules: { files: '0 1 * * *' },
      },
    },
  });
  inventory = loadInventory(file);
  process.env.OPSFLOW_INVENTORY = file;
  worker = await startWorker(env, file, queue);
});

function releaseLock(): void {
  if (lockHolder?.pid) process.kill(-lockHolder.pid, 'SIGKILL');
  lockHolder = undefined;
}

afterAll(async () => {
  releaseLock();
  for (const id of [FILES]) await env.client.schedule.getHandle(id).delete().catch(() => undefined);
  await worker?.stop();
  await env?.teardown();
  rmSync(art, { recursive: true, force: true });
});

/** Runs the CLI in-process and returns its exit code and what it printed. */
async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    const code = await runCli(['node', 'opsflow', ...args]);
    return { code, out: lines.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}

const runsOf = async (scheduleId: string) => {
  const runs: string[] = [];
  for await (const wf of env.client.workflow.list({ query: `TemporalScheduledById = "${scheduleId}"` })) runs.push(`${wf.workflowId}:${wf.status.name}`);
  return runs;
};

describe('nightly schedules', () => {
  it('are created from the inventory: cron in the system time zone, overlap SKIP, a bounded catch-up window', async () => {
    expect(() => desiredSchedules(inventory, 'broken')).toThrow('systems.broken.schedules.files: blue, green has no files path');
    const created = await applySchedules(env.client, inventory, { system: SYSTEM, taskQueue: queue });
    expect(created).toEqual([{ id: FILES, action: 'created', cron: '30 2 * * *', timezone: 'Europe/Paris' }]);
    const d = await env.client.schedule.getHandle(FILES).describe();
    expect(d.spec.timezone).toBe('Europe/Paris');
    expect(d.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 600_000 });
    expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'dataSync', taskQueue: queue, args: [{ system: SYSTEM, stores: ['files'], failure: { onFailure: 'fail' } }] });
    // 02:30 in Paris is 00:30 or 01:30 UTC, depending on the season.
    expect(d.info.nextActionTimes[0].getUTCMinutes()).toBe(30);
    expect([0, 1]).toContain(d.info.nextActionTimes[0].getUTCHours());
    expect((await applySchedules(env.client, inventory, { system: SYSTEM, taskQueue: queue }))[0].action).toBe('updated');
  });

  it('a trigger runs the sync; a second while it still goes is skipped (overlap SKIP)', async () => {
    // The first run's rclone waits on the lock this test holds, as behind a long sync of the same store.
    const lockDir = path.join(process.env.OPSFLOW_STATE_DIR as string, 'locks');
    mkdirSync(lockDir, { recursive: true });
    const lockFile = path.join(lockDir, `rclone-${createHash('sha256').update(greenDir).digest('hex').slice(0, 16)}.lock`);
    // Its own process group: the sleep inherits the lock, and both must go to release it.
    lockHolder = spawn('flock', [lockFile, 'sleep', '300'], { stdio: 'ignore', detached: true });
    await waitFor(() => existsSync(lockFile), 'the lock to be held');

    expect((await cli('schedule', 'trigger', FILES)).code).toBe(0);
    const [first] = await waitFor(async () => ((await runsOf(FILES)).length ? runsOf(FILES) : undefined), 'the triggered run', 30_000, 200);
    expect(first).toMatch(/:RUNNING$/);
    expect((await cli('schedule', 'trigger', FILES)).code).toBe(0);
    const d = await waitFor(async () => {
      const x = await env.client.schedule.getHandle(FILES).describe();
      return x.info.numActionsSkippedOverlap > 0 ? x : undefined;
    }, 'the second trigger to be skipped', 90_000, 200);
    expect(d.info.runningActions).toHaveLength(1);
    expect(await runsOf(FILES)).toHaveLength(1);

    releaseLock();
    const handle = env.client.workflow.getHandle(d.info.runningActions[0].workflow.workflowId);
    expect(await handle.result()).toMatchObject({ files: { check: { differences: 0, same: 20 } } });
  });

  it('a workflow pauses the schedules and resumes them when its time is up, or at once when cancelled', async () => {
    const start = (duration: string) =>
      env.client.workflow.start<typeof pauseDataSync>('pauseDataSync', { taskQueue: queue, workflowId: unique('pause'), args: [{ system: SYSTEM, schedules: ['files'], reason: 'EFS maintenance', for: duration, requestedBy: 'alice' }] });
    const isPaused = async () => (await env.client.schedule.getHandle(FILES).describe()).state;
    const timed = await start('2s');
    expect(await timed.result()).toMatchObject({ schedules: [FILES], alreadyPaused: [] });
    recordHistory(timed, 'pauseDataSync');
    const done = (await timed.fetchHistory()).events?.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
    // gateSigners: every run reads the keys that may sign its gate answers when it starts (docs/gates.md, "Signed gate answers").
    expect(done).toEqual(['gateSigners', 'pauseSchedules', 'unpauseSchedules']);
    expect((await isPaused()).paused).toBe(false);

    // Describing a schedule queries its scheduler workflow on the server, slow when the machine is busy: generous waits.
    const held = await start('10m');
    const state = await waitFor(async () => ((await isPaused()).paused ? isPaused() : undefined), 'the schedule to be paused', 90_000, 200);
    expect(state.note).toContain('EFS maintenance (paused by alice');
    const listed = await cli('schedule', 'list', '--system', SYSTEM);
    expect(listed.out).toContain(`${FILES}`);
    expect(listed.out).toContain('PAUSED');
    await held.cancel();
    await expect(held.result()).rejects.toThrow();
    expect((await isPaused()).paused).toBe(false);
  });

  it('refuses an unknown schedule id without pausing the others', async () => {
    const h = await env.client.workflow.start<typeof pauseDataSync>('pauseDataSync', { taskQueue: queue, workflowId: unique('pause'), args: [{ system: SYSTEM, schedules: ['files', 'database'], reason: 'x', for: '1m', failure: { onFailure: 'fail' } }] });
    const failure = await failureOf(h);
    expect(failure.type).toBe('ScheduleNotFound');
    expect(failure.message).toContain(`no schedule "opsflow:${SYSTEM}:database"`);
    // What a newcomer whose schedules were never created must do next (hotStandbyRelease pauses them the same way).
    expect(failure.message).toContain("a system's schedules exist once `opsflow schedule apply` has created them");
    expect((await env.client.schedule.getHandle(FILES).describe()).state.paused).toBe(false);
  });

  it('opsflow schedule pause / unpause / list from the CLI', async () => {
    expect((await cli('schedule', 'pause', '--system', SYSTEM, '--reason', 'release 42')).out).toContain(`${FILES}: paused`);
    expect((await cli('schedule', 'pause', FILES, '--reason', 'again')).out).toContain(`${FILES}: already paused`);
    const rows = await listSchedules(env.client, SYSTEM);
    expect(rows).toEqual([expect.objectContaining({ id: FILES, paused: true, note: 'release 42', workflowType: 'dataSync' })]);
    expect((await cli('schedule', 'unpause', FILES)).out).toContain(`${FILES}: resumed`);
    const unknown = await cli('schedule', 'trigger', 'opsflow:nope:files');
    expect(unknown).toMatchObject({ code: 1, out: expect.stringContaining('no schedule "opsflow:nope:files"') });
    expect((await cli('schedule', 'pause', '--reason', 'x')).code).toBe(2);
  });
});
