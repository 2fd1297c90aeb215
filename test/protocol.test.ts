// The gate protocol is one module (src/runbook/protocol.ts) for the workflows, the CLI and the Slack endpoint:
// the messages keep the names the docs and signal-only clients use, the clients send through its definitions,
// and its payload types refuse at compile time what the workflow's validator refuses at run time.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ANSWERS, statusQuery, type AnswerPayload } from '../src/runbook/protocol';

const sources = (dir: string) => readdirSync(path.join(__dirname, '..', dir)).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));

describe('the gate protocol', () => {
  it('names the updates, signals and query as docs/gates.md does', () => {
    expect(Object.entries(ANSWERS).map(([answer, m]) => [answer, m.update.name, m.signal.name])).toEqual([
      ['approve', 'approve', 'approve'],
      ['reject', 'reject', 'reject'],
      ['resolve', 'resolve', 'resolve'],
    ]);
    expect(statusQuery.name).toBe('status');
  });

  it('is what the CLI and the Slack endpoint send: no message is named by a string there', () => {
    for (const file of [...sources('src/cli'), ...sources('src/slack')]) {
      const text = readFileSync(path.join(__dirname, '..', file), 'utf8');
      expect(text, file).not.toMatch(/\.(executeUpdate|startUpdate|signal|query)(<[^>]*>)?\(\s*['"`]/);
    }
  });

  it('types the payloads: one the validator would refuse does not type-check', () => {
    const ok: AnswerPayload<'reject'> = { by: 'alice', reason: 'not during the sale' };
    // @ts-expect-error a rejection needs a reason
    const noReason: AnswerPayload<'reject'> = { by: 'alice' };
    // @ts-expect-error resolve answers retry, skip or abort
    const badAction: AnswerPayload<'resolve'> = { by: 'alice', action: 'rollback' };
    expect(ANSWERS.reject.schema.safeParse(ok).success).toBe(true);
    expect(ANSWERS.reject.schema.safeParse(noReason).success).toBe(false);
    expect(ANSWERS.resolve.schema.safeParse(badAction).success).toBe(false);
  });
});
