// Applications in the inventory: an application's database and the commands that put it in read-only
// (maintenance) mode, restart it and check it. safeMigration works through these: it never guesses how an
// application behaves, and a migration's input names only the application and the migration.
import { z } from 'zod';
import { name } from '../schemas/common';
import { hostCommandSchema } from './systems';

export const applicationSchema = z.strictObject({
  /** The inventory environment holding the hosts the commands below run on. */
  environment: name,
  /** The inventory database the application runs on. */
  database: name,
  /** Read-only mode: the application keeps serving reads and refuses writes (a maintenance flag, a config switch). */
  readOnly: z.strictObject({ on: hostCommandSchema, off: hostCommandSchema }),
  /** Restarts the application (on each of its hosts), so none of its connections to the previous database remains. */
  restart: z.array(hostCommandSchema).min(1),
  /** A write and a read through the application, exit 0 when both work: in read-only mode it must fail. */
  check: hostCommandSchema,
});
export type ApplicationConfig = z.output<typeof applicationSchema>;

/** Cross-references of the applications section; called from the inventory's own refinement. */
export function checkApplications(
  raw: { applications: Record<string, ApplicationConfig>; databases: Record<string, unknown>; environments: Record<string, { hosts: Record<string, unknown> }> },
  issue: (path: (string | number)[], message: string) => void,
): void {
  for (const [appName, app] of Object.entries(raw.applications)) {
    const at = ['applications', appName];
    if (!raw.databases[app.database]) issue([...at, 'database'], `unknown database "${app.database}"`);
    const env = raw.environments[app.environment];
    if (!env) {
      issue([...at, 'environment'], `unknown environment "${app.environment}"`);
      continue;
    }
    const commands: [(string | number)[], { host: string }][] = [
      [['readOnly', 'on'], app.readOnly.on],
      [['readOnly', 'off'], app.readOnly.off],
      ...app.restart.map((c, i): [(string | number)[], { host: string }] => [['restart', i], c]),
      [['check'], app.check],
    ];
    for (const [p, cmd] of commands) if (!env.hosts[cmd.host]) issue([...at, ...p, 'host'], `unknown host "${cmd.host}" in ${app.environment}`);
  }
}
