// Histories recorded from real runs (OPSFLOW_RECORD_HISTORIES=1 npm test) must replay against today's workflow
// code: a change that breaks determinism fails here, before it breaks runs that are in flight.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';

const dir = path.join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of recorded histories', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it('replays every one without a determinism error', async () => {
    // `<workflowId>@<what>.json`: another recording of the same run id, e.g. one made before a patch.
    const histories = files.map((f) => ({ workflowId: f.replace(/(@[^@]*)?\.json$/, ''), history: historyFromJSON(JSON.parse(readFileSync(path.join(dir, f), 'utf8'))) }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') } }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});
