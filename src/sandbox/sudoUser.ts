// `sudo npx opsflow sandbox up` runs as root, the worker of `npm start` as the person who ran sudo: the files the
// worker reads or writes are given to that person.
import { execFileSync } from 'node:child_process';

/** Files the worker reads or writes: owned by the person who ran sudo, so their `npm start` need not be root. */
export function giveToSudoUser(file: string): void {
  if (process.env.SUDO_UID && process.env.SUDO_GID) execFileSync('chown', ['-R', `${process.env.SUDO_UID}:${process.env.SUDO_GID}`, file]);
}
