// `opsflow`: start runbooks, follow them, and answer their gates from a terminal. This module is only the command
// line: each action loads what it needs when it runs (`await import`), so `opsflow status` starts without the
// workflow schemas, Slack, the AWS SDK, the Kubernetes client or the signing code.
import { userInfo } from 'node:os';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { MESSAGES, RESOLVE_ACTIONS } from '../runbook/messages';
import type { ApproveInput, RejectInput, ResolveInput } from '../runbook/protocol';
import { CliError } from './cliError';
import type { ListFilter } from './runs';
import { registerSandboxCommands } from './sandbox';
import { registerScheduleCommands } from './scheduleCommands';
import { registerSigningCommands } from './sign';

export { usage } from './usage';

const me = () => process.env.OPSFLOW_USER ?? userInfo().username;
const withClient: typeof import('./client').withClient = async (fn) => (await import('./client')).withClient(fn);
const runs = () => import('./runs');
const launch = () => import('./launch');

const collect = (value: string, previous: string[]) => [...previous, value];
const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive whole number');
  return n;
};

export function buildCli(): Command {
  const servers = new Set<Command>();
  const longRunning = (cmd: Command) => (servers.add(cmd), cmd);
  const program = new Command('opsflow')
    .description('production operations as durable Temporal workflows')
    .showHelpAfterError()
    // Before any subcommand is added, so they inherit it: usage errors exit 2, not via process.exit(1).
    .exitOverride()
    .option('-v, --verbose', 'log what the command does (to standard error); without it a command prints only its answer')
    // Logs belong to the worker: set before an action's lazy imports load the logger, which reads it once.
    // Long-running servers (slack serve, codec-server) log like the worker does.
    .hook('preAction', (cmd, action) => {
      process.env.OPSFLOW_LOG_LEVEL = cmd.opts<{ verbose?: boolean }>().verbose ? 'debug' : servers.has(action) ? 'info' : 'silent';
    })
    .addHelpText('after', '\nConnection: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY.\nIdentity for gates: --by, else OPSFLOW_USER, else your login name.');

  const inputOptions = (cmd: Command) =>
    cmd
      .option('-i, --input <file>', 'input JSON file (- for stdin)')
      .option('-s, --set <path=value>', 'set an input field (dotted path; JSON values allowed), repeatable', collect, [] as string[]);

  inputOptions(program.command('start <workflow>').description('start a workflow'))
    .option('--id <workflowId>', 'workflow id (default: generated)')
    .option('-w, --wait', 'wait for the result')
    .action(async (workflow: string, o: { input?: string; set: string[]; id?: string; wait?: boolean }) => {
      const { validated, startRun } = await launch();
      const input = validated(workflow, o, me());
      await withClient(async (client) => {
        const handle = await startRun(client, workflow, input, o.id);
        console.log(`started ${workflow} ${handle.workflowId}\n  follow: opsflow watch ${handle.workflowId}`);
        if (o.wait) console.log(JSON.stringify(await (await runs()).waitForResult(handle), null, 2));
      });
    });

  inputOptions(program.command('plan <workflow>').description('dry run: resolve targets and print every command, changing nothing'))
    .action(async (workflow: string, o: { input?: string; set: string[] }) => {
      const [{ validated, startRun }, { waitForResult }] = await Promise.all([launch(), runs()]);
      const input = validated(workflow, o, me(), { dryRun: true });
      await withClient(async (client) => {
        const handle = await startRun(client, workflow, input);
        console.log(JSON.stringify(await waitForResult(handle), null, 2));
      });
    });

  program
    .command('status <workflowId>')
    .description('the step timeline, open gates and decisions of a run')
    .option('--json', 'print the raw status object')
    .action(async (id: string, o: { json?: boolean }) => (await runs()).showStatus(id, o));

  program
    .command('watch <workflowId>')
    .description('follow a run until it ends or waits at a gate')
    .option('--interval <ms>', 'poll interval', positiveInt, 1000)
    .action(async (id: string, o: { interval: number }) => (await runs()).watch(id, o));

  const gateOptions = (cmd: Command) =>
    cmd
      .option('-g, --gate <gate>', 'gate id (needed when several are open)')
      .option('--by <person>', 'who answers', me())
      .option('--key <file>', 'sign with this private key file instead of the SSH agent')
      .option('--signal', 'send a signal instead of an update (for servers with updates disabled)');

  gateOptions(program.command('approve <workflowId>').description('approve the open gate'))
    .option('-c, --comment <text>', 'comment recorded with the decision')
    .action(async (id: string, o: { gate?: string; by: string; comment?: string; signal?: boolean; key?: string }) => (await runs()).answer<ApproveInput>(id, MESSAGES.approve, { gate: o.gate, by: o.by, comment: o.comment }, !!o.signal, o.key));

  gateOptions(program.command('reject <workflowId>').description('reject the open gate'))
    .requiredOption('-r, --reason <text>', 'why')
    .action(async (id: string, o: { gate?: string; by: string; reason: string; signal?: boolean; key?: string }) => (await runs()).answer<RejectInput>(id, MESSAGES.reject, { gate: o.gate, by: o.by, reason: o.reason }, !!o.signal, o.key));

  gateOptions(program.command('resolve <workflowId>').description('answer a failure gate'))
    .addOption(new Option('-a, --action <action>', 'what to do').choices(RESOLVE_ACTIONS).makeOptionMandatory())
    .option('-c, --comment <text>', 'comment recorded with the decision')
    .action(async (id: string, o: { gate?: string; by: string; action: ResolveInput['action']; comment?: string; signal?: boolean; key?: string }) => (await runs()).answer<ResolveInput>(id, MESSAGES.resolve, { gate: o.gate, by: o.by, action: o.action, comment: o.comment }, !!o.signal, o.key));

  program
    .command('list')
    .description('recent runs, filtered by the search attributes')
    .option('-e, --env <environment>', 'OpsEnvironment')
    .option('--service <service>', 'OpsService')
    .option('--release <release>', 'OpsRelease')
    .addOption(new Option('--status <status>', 'execution status').choices(['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut']))
    .option('-n, --limit <n>', 'how many', positiveInt, 20)
    .action(async (o: ListFilter) => (await runs()).listRuns(o));

  program
    .command('roles <system>')
    .description("which infrastructure is production and which the hot standby, their releases, and any change embargo")
    .option('--inventory <file>', 'inventory declaring the system (default: $OPSFLOW_INVENTORY, ./inventory.yaml, sandbox/inventory.yaml)')
    .option('--json', 'print the registry as JSON')
    .action(async (system: string, o: { inventory?: string; json?: boolean }) =>
      withClient(async (client) => {
        const [{ inventoryFromEnv }, { readRoles }, { renderRoles }] = await Promise.all([import('../workers/inventoryFromEnv'), import('../activities/roles'), import('./render')]);
        const inventory = inventoryFromEnv(o.inventory);
        if (!inventory.systems().includes(system)) throw new CliError(`unknown system "${system}" (the inventory has: ${inventory.systems().join(', ') || 'none'})`, 2);
        const roles = await readRoles({ inventory, temporal: client }, system);
        if (o.json) return console.log(JSON.stringify(roles, null, 2));
        console.log(renderRoles(roles, inventory.system(system), (account) => inventory.awsAccount(account).region));
      }),
    );

  program
    .command('schema <workflow>')
    .description("the JSON Schema of a workflow's input")
    .action(async (workflow: string) => {
      const [{ entryOf }, { z }] = await Promise.all([launch(), import('zod')]);
      console.log(JSON.stringify(z.toJSONSchema(entryOf(workflow).input, { io: 'input' }), null, 2));
    });

  program
    .command('example <workflow>')
    .description('a ready-to-paste input for the Temporal UI or --input')
    .action(async (workflow: string) => console.log(JSON.stringify((await launch()).entryOf(workflow).example, null, 2)));

  program
    .command('workflows')
    .description('the workflows opsflow offers')
    .action(async () => {
      const { WORKFLOWS } = await import('../schemas/index');
      for (const [name, entry] of Object.entries(WORKFLOWS)) console.log(`${name.padEnd(20)} ${entry.description}`);
    });

  longRunning(program.command('slack').description('Slack integration').command('serve'))
    .description('serve the Slack interactivity endpoint (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET; OPSFLOW_SLACK_HOST/PORT)')
    .option('--inventory <file>', 'inventory with the people section (default: $OPSFLOW_INVENTORY, ./inventory.yaml, sandbox/inventory.yaml)')
    .action(async (o: { inventory?: string }) => {
      const [{ connect }, { startSlackEndpoint }, { inventoryFromEnv }] = await Promise.all([import('./client'), import('../slack/serve'), import('../workers/inventoryFromEnv')]);
      const { client, connection } = await connect();
      const endpoint = await startSlackEndpoint(client, inventoryFromEnv(o.inventory));
      if (!endpoint) {
        await connection.close();
        throw new CliError('Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET', 2);
      }
      console.log(`Slack interactivity endpoint at ${endpoint.url} (point the Slack app's Request URL here, through your HTTPS proxy)`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      await endpoint.close();
      await connection.close();
    });

  longRunning(program.command('codec-server'))
    .description('decode encrypted payloads for the Temporal Web UI and `temporal --codec-endpoint` (keys: OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE)')
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('-p, --port <port>', 'port', positiveInt, 8234)
    .option('--origin <url>', "the Web UI's origin, allowed to call it from the browser (repeatable)", collect, [] as string[])
    .addHelpText('after', '\nWith OPSFLOW_CODEC_TOKEN set, every request must carry "Authorization: Bearer <token>".')
    .action(async (o: { host: string; port: number; origin: string[] }) => {
      const [{ codecSetting }, { keyringFromEnv }, { AesGcmCodec }, { startCodecServer }] = await Promise.all([import('./client'), import('../codec/keys'), import('../codec/aesGcm'), import('../codec/server')]);
      const keys = codecSetting(keyringFromEnv);
      if (!keys) throw new CliError('no keys: set OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE', 2);
      const origins = o.origin.length ? o.origin : ['http://127.0.0.1:8233', 'http://localhost:8233'];
      const server = await startCodecServer({ codec: new AesGcmCodec(keys), host: o.host, port: o.port, origins, token: process.env.OPSFLOW_CODEC_TOKEN || undefined });
      console.log(`codec server at ${server.url} (current key ${keys.current.id}; UI origins ${origins.join(', ')}${process.env.OPSFLOW_CODEC_TOKEN ? '; bearer token required' : ''})`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      await server.close();
    });

  registerScheduleCommands(program, { withClient, inventory: async (file) => (await import('../workers/inventoryFromEnv')).inventoryFromEnv(file), error: (message: string, exitCode?: number) => new CliError(message, exitCode) });
  registerSigningCommands(program, { withClient, me, error: (message: string, exitCode?: number) => new CliError(message, exitCode) });
  registerSandboxCommands(program);

  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv);
    return 0;
  } catch (err) {
    // Commander has already printed its own message (usage errors) or the help.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    console.error(`opsflow: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}

if (require.main === module) {
  void runCli(process.argv).then((code) => process.exit(code));
}
