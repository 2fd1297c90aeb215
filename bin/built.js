// Whether dist/ holds JavaScript compiled from the sources as they are now. scripts/setup.sh removes the stamp
// before it runs tsc and writes it, dated from before tsc started, once tsc and the bundler have succeeded; so a
// source, tsconfig or example edited since (or during) the build, a file added to or removed from src/, or a
// dependency installed or upgraded (the bundle holds the packages' code) makes dist/ out of date.
const fs = require('node:fs');
const path = require('node:path');

const INPUTS = ['src', 'examples', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/bundle-cli.js'];

/** True when `p`, or anything under it (a directory's own time changes when entries come or go), is not older than `t`. */
function changedSince(p, t) {
  const st = fs.statSync(p, { bigint: true });
  if (st.mtimeNs >= t) return true;
  return st.isDirectory() && fs.readdirSync(p).some((e) => changedSince(path.join(p, e), t));
}

exports.distCurrent = function distCurrent(root = path.resolve(__dirname, '..')) {
  let built;
  try {
    built = fs.statSync(path.join(root, 'dist/.built'), { bigint: true }).mtimeNs;
  } catch {
    return false;
  }
  return !INPUTS.some((p) => changedSince(path.join(root, p), built));
};
