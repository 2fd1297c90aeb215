#!/usr/bin/env node
// The CLI runs from TypeScript source through tsx, so there is no build step to forget.
require('tsx/cjs');
// Standard output is the command's answer (a table, JSON); the log goes to standard error.
process.env.OPSFLOW_LOG_FD = '2';
require('../src/cli/main.ts')
  .runCli(process.argv)
  .then((code) => process.exit(code));
