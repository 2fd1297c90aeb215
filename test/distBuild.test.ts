// bin/opsflow.js runs dist/ only while bin/built.js finds it built from the sources as they are; any change since
// the build sends it back to the sources through tsx, so the CLI never runs stale JavaScript.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- plain JavaScript, as bin/opsflow.js loads it
const { distCurrent } = require('../bin/built.js') as { distCurrent: (root?: string) => boolean };

const CODE_CACHE = path.resolve(__dirname, '../bin/codeCache.js');
const past = new Date(Date.now() - 60_000);
const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

/** A checkout whose inputs are a minute old, built just now. */
function checkout(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'opsflow-dist-'));
  roots.push(root);
  const files = ['src/cli/main.ts', 'examples/fleetRun.json', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/bundle-cli.js'];
  for (const d of ['src/cli', 'examples', 'scripts', 'dist']) mkdirSync(path.join(root, d), { recursive: true });
  for (const f of files) writeFileSync(path.join(root, f), '');
  for (const p of [...files, 'src/cli', 'src', 'examples']) utimesSync(path.join(root, p), past, past);
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

  it('is out of date once a source is edited, a file added or removed, an example, a tsconfig, the dependencies or the bundler changed', () => {
    const edits: ((root: string) => void)[] = [
      (root) => writeFileSync(path.join(root, 'src/cli/main.ts'), 'export {};'),
      (root) => writeFileSync(path.join(root, 'src/cli/new.ts'), ''),
      (root) => rmSync(path.join(root, 'src/cli/main.ts')),
      (root) => writeFileSync(path.join(root, 'examples/fleetRun.json'), '{}'),
      (root) => writeFileSync(path.join(root, 'tsconfig.build.json'), '{}'),
      (root) => writeFileSync(path.join(root, 'package-lock.json'), '{}'),
      (root) => writeFileSync(path.join(root, 'scripts/bundle-cli.js'), ''),
    ];
    for (const edit of edits) {
      const root = checkout();
      edit(root);
      expect(distCurrent(root), edit.toString()).toBe(false);
    }
  });
});

describe('the bundled CLI runs through a V8 code cache', () => {
  /** What a new node process (as each CLI command is) gets from bin/codeCache.js, having written the cache if it had to. */
  const run = (file: string, nodeFlags: string[] = [], complete = true) =>
    Number(execFileSync(process.execPath, [...nodeFlags, '-e', `const r = require(${JSON.stringify(CODE_CACHE)}).requireCached(${JSON.stringify(file)}); r.save({ complete: ${complete} }); console.log(r.exports.answer)`], { encoding: 'utf8' }));

  it('is written by the first run, used as it is by the next, rewritten when V8 refuses it, and never runs a rebuilt bundle', () => {
    const file = path.join(checkout(), 'dist/main.bundle.js');
    const cache = `${file}.cache`;
    writeFileSync(file, 'module.exports = { answer: 41 };');
    utimesSync(file, past, past);
    expect(run(file)).toBe(41);
    expect(existsSync(cache)).toBe(true);
    const written = new Date(past.getTime() + 1000);
    utimesSync(cache, written, written);
    expect(run(file)).toBe(41);
    expect(statSync(cache).mtimeMs, 'V8 accepted the cache, so it was not rewritten').toBeCloseTo(written.getTime(), -1);
    // V8 refuses a cache made under other flags (or by another Node version).
    expect(run(file, ['--stack-size=2000'])).toBe(41);
    expect(statSync(cache).mtimeMs, 'a refused cache is rewritten').toBeGreaterThan(written.getTime() + 1000);
    // The same length, so V8 itself would take the old cache: its date, older than the bundle's, rules it out.
    writeFileSync(file, 'module.exports = { answer: 42 };');
    expect(run(file)).toBe(42);
  });

  it('written by a run that never reached Temporal (help, a usage error), is written again by the first that does', () => {
    const file = path.join(checkout(), 'dist/main.bundle.js');
    const [cache, partial] = [`${file}.cache`, `${file}.cache.partial`];
    writeFileSync(file, 'module.exports = { answer: 43 };');
    utimesSync(file, past, past);
    expect(run(file, [], false)).toBe(43);
    expect([existsSync(cache), existsSync(partial)]).toEqual([true, true]);
    const written = new Date(past.getTime() + 1000);
    utimesSync(cache, written, written);
    expect(run(file, [], false)).toBe(43);
    expect(statSync(cache).mtimeMs, 'another such run leaves it').toBeCloseTo(written.getTime(), -1);
    expect(run(file)).toBe(43);
    expect(statSync(cache).mtimeMs, 'a run that reached Temporal writes it again').toBeGreaterThan(written.getTime() + 1000);
    expect(existsSync(partial)).toBe(false);
    utimesSync(cache, written, written);
    expect(run(file)).toBe(43);
    expect(statSync(cache).mtimeMs, 'and from then on it stays').toBeCloseTo(written.getTime(), -1);
  });
});
