// Summaries of repeated measurements, and the one bounded loop every part uses to take them.

/** Linear interpolation between closest ranks (what numpy and most spreadsheets call the default). */
export function quantile(values: number[], q: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const median = (values: number[]) => quantile(values, 0.5);

export interface Summary {
  n: number;
  median: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  return { n: values.length, median: median(values), p95: quantile(values, 0.95), p99: quantile(values, 0.99), min: Math.min(...values), max: Math.max(...values) };
}

/** A loop's bounds: at most `times` rounds, and no new round once `budgetMs` has passed (one round always runs). */
export interface Bound {
  times: number;
  budgetMs: number;
}

/** Calls `fn(i)` up to `bound.times` times, stopping early once the time budget is spent; returns what it gave. */
export async function repeat<T>(bound: Bound, fn: (i: number) => Promise<T>): Promise<T[]> {
  const deadline = Date.now() + bound.budgetMs;
  const out: T[] = [];
  for (let i = 0; i < bound.times && (i === 0 || Date.now() < deadline); i++) out.push(await fn(i));
  return out;
}

/** Milliseconds `fn` took, by the monotonic clock. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `fn` over `items` with at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
