import { readFileSync } from 'node:fs';

/** Sets `value` at a dotted path, creating objects on the way. */
function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

/** JSON when it parses (numbers, booleans, arrays, objects), a plain string otherwise. */
function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** The input object from `--input file.json` (or `-` for stdin), then each `--set path=value` on top. */
export function readInput(file: string | undefined, sets: string[]): Record<string, unknown> {
  let input: Record<string, unknown> = {};
  if (file) {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}: not JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${file}: the input must be one JSON object`);
    input = parsed as Record<string, unknown>;
  }
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${set}: expected path=value`);
    setPath(input, set.slice(0, eq), parseValue(set.slice(eq + 1)));
  }
  return input;
}
