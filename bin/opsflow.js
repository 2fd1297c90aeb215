#!/usr/bin/env node
// The CLI runs from TypeScript source through tsx, so there is no build step to forget.
require('tsx/cjs');
require('../src/cli/main.ts')
  .runCli(process.argv)
  .then((code) => process.exit(code));
