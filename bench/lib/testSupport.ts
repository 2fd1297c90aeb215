// The deploy and datasync parts reuse the test suite's helpers as they are: HAProxy, the release repository,
// PostgreSQL clusters, moto_server, directory trees.
//
// test/support/haproxy.ts and releaseRepo.ts take freePort/waitFor from the test harness, and the harness
// imports `inject` from vitest, which refuses to load outside a test run. The bench never calls inject, so a
// stand-in answers for vitest while they load. Loading the harness also installs the Temporal runtime with a
// WARN logger (worker chatter would bury the tables), which the bench wants too: so the bench installs none of
// its own, and bench/run.ts imports this module before anything opens a Temporal connection.
import Module from 'node:module';

const vitest = require.resolve('vitest');
if (!require.cache[vitest]) {
  const stub = new Module(vitest);
  stub.filename = vitest;
  stub.loaded = true;
  stub.exports = {
    inject: () => {
      throw new Error('vitest inject() called outside a test run');
    },
  };
  require.cache[vitest] = stub;
}

/* eslint-disable @typescript-eslint/no-require-imports -- after the stand-in is in place, not hoisted above it */
export const { startHaproxy, startLoad } = require('../../test/support/haproxy') as typeof import('../../test/support/haproxy');
export const { startReleaseRepo } = require('../../test/support/releaseRepo') as typeof import('../../test/support/releaseRepo');
export const { startPostgres } = require('../../test/support/postgres') as typeof import('../../test/support/postgres');
export const { startMoto } = require('../../test/support/moto') as typeof import('../../test/support/moto');
export const { makeTree, treeDigest } = require('../../test/support/data') as typeof import('../../test/support/data');
export type { Haproxy } from '../../test/support/haproxy';
export type { ReleaseRepo } from '../../test/support/releaseRepo';
