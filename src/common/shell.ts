// POSIX shell quoting. Every argument that reaches a remote shell goes through `quote`, so a value such as
// `; rm -rf /` or `$(reboot)` arrives as one literal argument whatever the login shell (sh, dash, bash).

const SAFE = /^[A-Za-z0-9_\-+=/.,:@%]+$/;

export function quote(arg: string): string {
  if (arg.length > 0 && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quote).join(' ');
}
