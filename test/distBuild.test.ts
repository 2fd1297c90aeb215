// bin/opsflow.js runs dist/ only while bin/built.js finds it built from the sources as they are; any change since
// the build sends it back to the sources through tsx, so the CLI never runs stale JavaScript.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- plain JavaScript, as bin/opsflow.js loads it
const { distCurrent } = require('../bin/built.js') as { distCurrent: (root?: string) => boolean };

const past = new Date(Date.now() - 60_000);
const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

/** A checkout whose inputs are a minute old, built just now. */
function checkout(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'opsflow-dist-'));
  roots.push(root);
  for (const d of ['src/cli', 'examples', 'dist']) mkdirSync(path.join(root, d), { recursive: true });
  for (const f of ['src/cli/main.ts', 'examples/fleetRun.json', 'tsconfig.json', 'tsconfig.build.json']) writeFileSync(path.join(root, f), '');
  for (const p of ['src/cli/main.ts', 'src/cli', 'src', 'examples/fleetRun.json', 'examples', 'tsconfig.json', 'tsconfig.build.json']) utimesSync(path.join(root, p), past, past);
  writeFileSync(path.join(root, 'dist/.built'), '');
  return root;
}

describe('dist/ is used only when current', () => {
  it('is current after a build, and not without the stamp', () => {
    const root = checkout();
    expect(distCurrent(root)).toBe(true);
    rmSync(path.join(root, 'dist/.built'));
    expect(distCurrent(root)).toBe(false);
  });

  it('is out of date once a source is edited, a file added or removed, an example or a tsconfig changed', () => {
    const edits: ((root: string) => void)[] = [
      (root) => writeFileSync(path.join(root, 'src/cli/main.ts'), 'export {};'),
      (root) => writeFileSync(path.join(root, 'src/cli/new.ts'), ''),
      (root) => rmSync(path.join(root, 'src/cli/main.ts')),
      (root) => writeFileSync(path.join(root, 'examples/fleetRun.json'), '{}'),
      (root) => writeFileSync(path.join(root, 'tsconfig.build.json'), '{}'),
    ];
    for (const edit of edits) {
      const root = checkout();
      edit(root);
      expect(distCurrent(root), edit.toString()).toBe(false);
    }
  });
});
