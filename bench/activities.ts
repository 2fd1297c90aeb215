// The bench workflows' activities.
export const benchActivities = {
  /** Does nothing, and says how long that took: the time a step spends in its activity. */
  async noop(): Promise<number> {
    const t0 = performance.now();
    return performance.now() - t0;
  },
};

export type BenchActivities = typeof benchActivities;
