// Bundles the compiled CLI (dist/src/cli/main.js, tsc's output) into one file, dist/src/cli/main.bundle.js, which
// bin/opsflow.js runs through a V8 code cache (bin/codeCache.js). One file because Node 20 has no compile cache for
// modules: a single script can carry one, where the ~600 module files the CLI loads from would need ~600 caches
// and as many lookups. It sits beside main.js so that paths its modules take from __dirname stay as in tsc's
// output. The commands' lazy imports stay lazy: each bundled module runs only when first required.
const { buildSync } = require('esbuild');

// Native addons cannot be bundled, and packages only some commands load (the sandbox's ssh2, the roles command's
// worker-side code, Slack, the cloud SDKs) are resolved from node_modules at run time as before.
const EXTERNAL = ['ssh2', 'cpu-features', '@aws-sdk/*', '@smithy/*', '@kubernetes/*', '@slack/*', 'playwright-core', 'pg', '@temporalio/worker', '@temporalio/core-bridge', '@temporalio/testing', '@swc/*', 'tsx', 'esbuild'];

buildSync({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/src/cli/main.bundle.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: EXTERNAL,
  // Less to read at every start; identifiers are not minified, so errors and stack traces read as before.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
