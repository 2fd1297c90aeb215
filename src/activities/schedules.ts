// Pausing and resuming Temporal Schedules by id: release workflows hold the nightly syncs while they swap
// infrastructures, and `opsflow schedule pause` does the same from a terminal.
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { heartbeatEvery } from './tool';
import { schedulesNotFound } from '../common/errors';

export interface PauseOutcome {
  id: string;
  /** Its state before: a caller that finds it already paused knows someone else holds it. */
  wasPaused: boolean;
}

/**
 * Pauses or resumes every schedule named, or none: an unknown id fails (non-retryably) before anything changes.
 * A schedule already in the wanted state is left as it is, so a retried call changes nothing twice.
 */
export async function setSchedulesPaused(client: Client, ids: string[], paused: boolean, note: string): Promise<PauseOutcome[]> {
  const found: PauseOutcome[] = [];
  const unknown: string[] = [];
  for (const id of ids) {
    try {
      found.push({ id, wasPaused: (await client.schedule.getHandle(id).describe()).state.paused });
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) unknown.push(id);
      else throw err;
    }
  }
  if (unknown.length) {
    throw schedulesNotFound(unknown, paused);
  }
  for (const s of found) {
    if (s.wasPaused === paused) continue;
    const handle = client.schedule.getHandle(s.id);
    await (paused ? handle.pause(note) : handle.unpause(note));
  }
  return found;
}

export function createScheduleActivities(deps: { temporal: Client }) {
  // A schedule's describe is a query to its scheduler workflow on the server, which can take seconds on a busy
  // server: the heartbeats keep such a wait from passing for a dead worker.
  const beating = async (ids: string[], paused: boolean, note: string) => {
    const stop = heartbeatEvery(5_000, () => ({ ids, paused }));
    try {
      return await setSchedulesPaused(deps.temporal, ids, paused, note);
    } finally {
      stop();
    }
  };
  return {
    async pauseSchedules(input: { ids: string[]; note: string }): Promise<PauseOutcome[]> {
      return beating(input.ids, true, input.note);
    },
    async unpauseSchedules(input: { ids: string[]; note: string }): Promise<PauseOutcome[]> {
      return beating(input.ids, false, input.note);
    },
  };
}
