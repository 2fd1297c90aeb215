// The remote command as the operator approves it. Pure, so workflows can show it in plans and prompts.
import { quote, quoteArgv } from './shell';

export interface RemoteCommand {
  argv: string[];
  sudo?: boolean;
  cwd?: string;
  env?: Record<string, string>;
}

/** sudo -n never prompts: a host that wants a password fails at once instead of hanging. */
export function programArgv(cmd: RemoteCommand): string[] {
  const env = Object.entries(cmd.env ?? {}).map(([k, v]) => `${k}=${v}`);
  return [...(cmd.sudo ? ['sudo', '-n', '--'] : []), ...(env.length ? ['env', '--', ...env] : []), ...cmd.argv];
}

/** The program and its arguments, quoted as a shell would need them. */
export function commandLine(cmd: RemoteCommand): string {
  const line = quoteArgv(programArgv(cmd));
  return cmd.cwd ? `cd ${quote(cmd.cwd)} && ${line}` : line;
}
