// POSIX shell quoting. Every argument that reaches a remote shell goes through `quote`, so a value such as
// `; rm -rf /` or `$(reboot)` arrives as one literal argument whatever the login shell (sh, dash, bash).

const SAFE = /^[A-Za-z0-9_\-+=/.,:@%]+$/;

const singleQuoted = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

export function quote(arg: string): string {
  if (arg.length > 0 && SAFE.test(arg)) return arg;
  return singleQuoted(arg);
}

export function quoteArgv(argv: readonly string[]): string {
  // An unquoted first word such as `A=1` is a variable assignment, not the program: quote it.
  return argv.map((arg, i) => (i === 0 && arg.includes('=') ? singleQuoted(arg) : quote(arg))).join(' ');
}
