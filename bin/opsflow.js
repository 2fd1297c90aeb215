#!/usr/bin/env node
// Standard output is the command's answer (a table, JSON); the log goes to standard error.
process.env.OPSFLOW_LOG_FD = '2';
// The JavaScript that scripts/setup.sh compiles and bundles into dist/ when it is built from the sources as they are
// now (it starts in a fraction of tsx's time), run through a V8 code cache; otherwise the TypeScript sources through
// tsx, as `node --import tsx` runs them (the commands' `await import()`s go through tsx's ESM hooks), so a checkout
// without setup, or one edited since, still runs its current code.
const path = require('node:path');
const built = require('./built').distCurrent() && require('./codeCache').requireCached(path.join(__dirname, '../dist/src/cli/main.bundle.js'));
const main = built ? Promise.resolve(built.exports) : import('tsx').then(() => require('../src/cli/main.ts'));
main.then((cli) => cli.runCli(process.argv)).then((code) => {
  if (built) built.save({ complete: built.exports.usage.temporal });
  process.exit(code);
});
