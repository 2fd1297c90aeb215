// Runs a CommonJS file with a V8 code cache beside it (`<file>.cache`), as the v8-compile-cache package does:
// Node 20 has no module compile cache, and compiling the bundled CLI costs more than the command's own work.
// The cache is written by the first run once its command has finished, so it also holds the functions that run
// compiled lazily; a run that never reached Temporal (help, a usage error) writes one without the client's code,
// marked partial (`<file>.cache.partial`), which the first run that does reach it writes again. V8 refuses a cache from another Node version or other flags (it is then rewritten); one older
// than the file, or from a file of another length, is ignored, so a rebuilt bundle never runs stale code.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { Module, createRequire } = require('node:module');
const { isAscii } = require('node:buffer');

exports.requireCached = function requireCached(file) {
  const cacheFile = `${file}.cache`;
  // esbuild writes ASCII, the same text read as Latin-1 or as UTF-8; Node 20 takes twice as long (~8 ms) for UTF-8.
  const bytes = fs.readFileSync(file);
  const source = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  let cachedData;
  try {
    if (fs.statSync(cacheFile).mtimeMs >= fs.statSync(file).mtimeMs) cachedData = fs.readFileSync(cacheFile);
  } catch {
    // no cache yet
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.loaded = true;
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, path.dirname(file));
  const partial = `${cacheFile}.partial`;
  const save = ({ complete }) => {
    if (cachedData && !script.cachedDataRejected && !(complete && fs.existsSync(partial))) return;
    // Through a rename, so that a CLI started meanwhile reads a whole cache or none; a read-only install keeps working uncached.
    const tmp = `${cacheFile}.${process.pid}`;
    try {
      fs.writeFileSync(tmp, script.createCachedData());
      if (!complete) fs.writeFileSync(partial, '');
      fs.renameSync(tmp, cacheFile);
      if (complete) fs.rmSync(partial, { force: true });
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  };
  return { exports: mod.exports, save };
};
