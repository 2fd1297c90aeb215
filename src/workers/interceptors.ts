// The activity interceptors every worker installs: they make two properties hold for every activity, however it
// is written. See docs/timeouts.md and the error catalogue (src/common/errors.ts).
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { toFailure } from '../common/errors';

/** Catalogue errors reach Temporal as ApplicationFailures of their type and retryability; others stay retryable. */
export const errorInterceptor: ActivityInterceptorsFactory = () => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        throw toFailure(err);
      }
    },
  },
});

/** How often an activity that says nothing for a while heartbeats for itself (well inside HEARTBEAT_TIMEOUT). */
export const KEEPALIVE_MS = 3_000;

/**
 * An activity scheduled with a heartbeat timeout heartbeats at least every KEEPALIVE_MS while it runs, repeating
 * its own last details, so a worker that dies during any call (a DNS read, an S3 request) is noticed within the
 * heartbeat timeout, and an activity's progress details are never replaced by an empty beat.
 */
export const heartbeatInterceptor: ActivityInterceptorsFactory = (ctx: Context) => ({
  inbound: {
    async execute(input, next) {
      if (!ctx.info.heartbeatTimeoutMs) return next(input);
      const beat = ctx.heartbeat.bind(ctx);
      let last: unknown;
      let lastAt = Date.now();
      Object.defineProperty(ctx, 'heartbeat', {
        value: (details?: unknown) => {
          last = details;
          lastAt = Date.now();
          beat(details);
        },
      });
      const timer = setInterval(() => {
        if (Date.now() - lastAt >= KEEPALIVE_MS) ctx.heartbeat(last);
      }, KEEPALIVE_MS / 3);
      try {
        return await next(input);
      } finally {
        clearInterval(timer);
      }
    },
  },
});
