// `opsflow`: start runbooks, follow them, and answer their gates from a terminal.
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { SA_ENVIRONMENT, SA_RELEASE, SA_SERVICE, TASK_QUEUE } from '../common/constants';
import { name as nameSchema } from '../schemas/common';
import { WORKFLOWS, workflowEntry, type WorkflowEntry } from '../schemas/index';
import { describeIssues } from '../schemas/validate';
import { startSlackEndpoint } from '../slack/serve';
import { AesGcmCodec } from '../codec/aesGcm';
import { KeyError, keyringFromEnv } from '../codec/keys';
import { startCodecServer } from '../codec/server';
import { dataConverterFromEnv, targetFromEnv } from '../temporal/connection';
import { inventoryFromEnv } from '../workers/inventoryFromEnv';
import { ANSWERS, resolveInput, statusQuery, type AnswerMessage, type ApproveInput, type RejectInput, type ResolveInput, type RunStatus, type VoteResult } from '../runbook/protocol';
import { readRoles } from '../activities/roles';
import { readInput } from './input';
import { renderRoles, renderStatus } from './render';
import { registerScheduleCommands } from './schedule';
import { registerSigningCommands, withSignature, type AnswerPayload } from './sign';

/** Exit codes: 1 the operation failed or was refused, 2 the command line or input was wrong. */
class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

async function connect(): Promise<{ client: Client; connection: Connection }> {
  const target = targetFromEnv() ?? { address: '127.0.0.1:7233', namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' };
  const dataConverter = codecSetting(dataConverterFromEnv);
  try {
    const connection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey, connectTimeout: '5s' });
    return { client: new Client({ connection, namespace: target.namespace, dataConverter }), connection };
  } catch (err) {
    throw new CliError(`cannot reach Temporal at ${target.address}: ${(err as Error).message} (is \`npm start\` running, or TEMPORAL_ADDRESS set?)`);
  }
}

/** A bad key setting is a configuration mistake: exit 2 with what is wrong. */
function codecSetting<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof KeyError) throw new CliError(err.message, 2);
    throw err;
  }
}

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, connection } = await connect();
  try {
    return await fn(client);
  } finally {
    await connection.close();
  }
}

const me = () => process.env.OPSFLOW_USER ?? userInfo().username;

/** An unknown workflow name is a command-line mistake: exit 2. */
function entryOf(workflow: string): WorkflowEntry {
  try {
    return workflowEntry(workflow);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

/** The input from --input and --set, checked against the workflow's schema; any problem exits 2. */
function validated(workflow: string, o: { input?: string; set: string[] }, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const entry = entryOf(workflow);
  let raw: Record<string, unknown>;
  try {
    raw = readInput(o.input, o.set);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  // The operator starting the run is its requester unless the input names one, so four eyes just works.
  const input = { requestedBy: me(), ...raw, ...overrides };
  const parsed = entry.input.safeParse(input);
  if (!parsed.success) throw new CliError(`invalid input for ${workflow}:\n${describeIssues(parsed.error).map((p) => `  - ${p}`).join('\n')}`, 2);
  return input;
}

async function startRun(client: Client, workflow: string, input: Record<string, unknown>, id?: string): Promise<WorkflowHandle> {
  const entry = workflowEntry(workflow);
  const labels = entry.labels(input);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return client.workflow.start(workflow, {
    taskQueue: process.env.OPSFLOW_TASK_QUEUE ?? TASK_QUEUE,
    workflowId: id ?? `${workflow}-${labels.environment ?? 'run'}-${stamp}-${randomBytes(2).toString('hex')}`,
    args: [input],
    staticSummary: entry.summary(input),
    typedSearchAttributes: [
      ...(labels.environment ? [{ key: SA_ENVIRONMENT, value: labels.environment }] : []),
      ...(labels.service ? [{ key: SA_SERVICE, value: labels.service }] : []),
      ...(labels.release ? [{ key: SA_RELEASE, value: labels.release }] : []),
    ],
  });
}

function failureMessage(err: unknown): string {
  let e = err as Error | undefined;
  const parts: string[] = [];
  while (e) {
    if (e.message && !parts.includes(e.message)) parts.push(e.message);
    e = (e as { cause?: Error }).cause;
  }
  const message = parts.slice(-1)[0] ?? String(err);
  // The run's payloads were encrypted by a worker with keys this CLI was not given.
  return message.includes('binary/encrypted') ? `${message} (the payloads are encrypted: set OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE as the worker has them)` : message;
}

async function fetchStatus(handle: WorkflowHandle): Promise<RunStatus | string> {
  try {
    return await handle.query(statusQuery);
  } catch (queryErr) {
    const d = await handle.describe();
    if (d.status.name === 'FAILED') {
      const reason = await handle.result().then(() => '', (err: unknown) => failureMessage(err));
      return `${d.type} ${d.workflowId}: FAILED\n  ${reason}`;
    }
    return `${d.type} ${d.workflowId}: ${d.status.name} (status unavailable: ${failureMessage(queryErr)})`;
  }
}

async function progressLine(handle: WorkflowHandle): Promise<string | undefined> {
  const d = await handle.describe();
  for (const a of d.raw.pendingActivities ?? []) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    // Through the client's data converter: heartbeats are encrypted when payload encryption is on.
    const p = await decodeFromPayloadsAtIndex<{ total?: number; done?: number; failed?: number; running?: string[]; deployment?: string; message?: string }>(handle.client.options.loadedDataConverter, 0, [payload]);
    // A Kubernetes rollout (k8sRolloutStatus) heartbeats its deployment and progress.
    if (p?.deployment && p.message) return `rollout ${p.deployment}: ${p.message}`;
    if (p && typeof p.total === 'number') return `${a.activityType?.name}: ${p.done}/${p.total} hosts done, ${p.failed} failed${p.running?.length ? `, running on ${p.running.slice(0, 5).join(', ')}${p.running.length > 5 ? '…' : ''}` : ''}`;
  }
  return undefined;
}

async function waitForResult(handle: WorkflowHandle): Promise<unknown> {
  try {
    return await handle.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError) throw new CliError(`${handle.workflowId} failed: ${failureMessage(err)}`);
    throw err;
  }
}

/** Sends a gate answer with the definitions the workflows handle (src/runbook/protocol.ts). */
async function answer<P extends AnswerPayload>(id: string, message: { update: UpdateDefinition<VoteResult, [P]>; signal: SignalDefinition<[P]> }, unsigned: P, asSignal: boolean, key?: string): Promise<void> {
  const name = message.update.name;
  await withClient(async (client) => {
    const handle = client.workflow.getHandle(id);
    // Signed with the SSH agent (or --key) when the run's keys in force list one for --by.
    const payload = await withSignature(handle, client.options.namespace, name as AnswerMessage, unsigned, { key });
    if (asSignal) {
      await handle.signal(message.signal, payload);
      console.log(`signal ${name} sent to ${id}; check \`opsflow status ${id}\` for refusals`);
      return;
    }
    try {
      const res = await handle.executeUpdate(message.update, { args: [payload] });
      console.log(`${name}: gate "${res.gate}" is ${res.state}${name === 'approve' ? ` (${res.approvals}/${res.quorum} approvals)` : ''}`);
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new CliError(`refused: ${failureMessage(err)}`);
      throw new CliError(`${name} failed: ${failureMessage(err)}`);
    }
  });
}

const collect = (value: string, previous: string[]) => [...previous, value];
const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive whole number');
  return n;
};
const label = (v: string) => {
  const r = nameSchema.safeParse(v);
  if (!r.success) throw new InvalidArgumentError(r.error.issues[0].message);
  return v;
};

export function buildCli(): Command {
  const program = new Command('opsflow')
    .description('production operations as durable Temporal workflows')
    .showHelpAfterError()
    // Before any subcommand is added, so they inherit it: usage errors exit 2, not via process.exit(1).
    .exitOverride()
    .addHelpText('after', '\nConnection: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY.\nIdentity for gates: --by, else OPSFLOW_USER, else your login name.');

  const inputOptions = (cmd: Command) =>
    cmd
      .option('-i, --input <file>', 'input JSON file (- for stdin)')
      .option('-s, --set <path=value>', 'set an input field (dotted path; JSON values allowed), repeatable', collect, [] as string[]);

  inputOptions(program.command('start <workflow>').description('start a workflow'))
    .option('--id <workflowId>', 'workflow id (default: generated)')
    .option('-w, --wait', 'wait for the result')
    .action(async (workflow: string, o: { input?: string; set: string[]; id?: string; wait?: boolean }) => {
      const input = validated(workflow, o);
      await withClient(async (client) => {
        const handle = await startRun(client, workflow, input, o.id);
        console.log(`started ${workflow} ${handle.workflowId}\n  follow: opsflow watch ${handle.workflowId}`);
        if (o.wait) console.log(JSON.stringify(await waitForResult(handle), null, 2));
      });
    });

  inputOptions(program.command('plan <workflow>').description('dry run: resolve targets and print every command, changing nothing'))
    .action(async (workflow: string, o: { input?: string; set: string[] }) => {
      const input = validated(workflow, o, { dryRun: true });
      await withClient(async (client) => {
        const handle = await startRun(client, workflow, input);
        console.log(JSON.stringify(await waitForResult(handle), null, 2));
      });
    });

  program
    .command('status <workflowId>')
    .description('the step timeline, open gates and decisions of a run')
    .option('--json', 'print the raw status object')
    .action(async (id: string, o: { json?: boolean }) =>
      withClient(async (client) => {
        const status = await fetchStatus(client.workflow.getHandle(id));
        console.log(typeof status === 'string' || !o.json ? (typeof status === 'string' ? status : renderStatus(status)) : JSON.stringify(status, null, 2));
      }),
    );

  program
    .command('watch <workflowId>')
    .description('follow a run until it ends or waits at a gate')
    .option('--interval <ms>', 'poll interval', positiveInt, 1000)
    .action(async (id: string, o: { interval: number }) =>
      withClient(async (client) => {
        const handle = client.workflow.getHandle(id);
        const printed = new Set<number>();
        let lastProgress = '';
        for (;;) {
          const status = await fetchStatus(handle);
          if (typeof status === 'string') {
            console.log(status);
            return;
          }
          // A step is printed once it has ended; a running one shows up in the progress line meanwhile.
          for (const st of status.steps.filter((x) => x.state !== 'running' && !printed.has(x.id))) {
            printed.add(st.id);
            console.log(`${st.startedAt.slice(11, 19)} ${st.name}${st.host ? ` @${st.host}` : ''}: ${st.state}${st.error ? ` — ${st.error.split('\n')[0]}` : ''}`);
          }
          const progress = await progressLine(handle);
          if (progress && progress !== lastProgress) console.log(`  … ${progress}`);
          lastProgress = progress ?? '';
          if (status.state !== 'running') {
            console.log(`\n${renderStatus(status)}`);
            if (status.state === 'failed') throw new CliError('the run failed');
            if (status.state === 'cancelled') throw new CliError('the run was cancelled');
            return;
          }
          await new Promise((r) => setTimeout(r, o.interval));
        }
      }),
    );

  const gateOptions = (cmd: Command) =>
    cmd
      .option('-g, --gate <gate>', 'gate id (needed when several are open)')
      .option('--by <person>', 'who answers', me())
      .option('--key <file>', 'sign with this private key file instead of the SSH agent')
      .option('--signal', 'send a signal instead of an update (for servers with updates disabled)');

  gateOptions(program.command('approve <workflowId>').description('approve the open gate'))
    .option('-c, --comment <text>', 'comment recorded with the decision')
    .action((id: string, o: { gate?: string; by: string; comment?: string; signal?: boolean; key?: string }) => answer<ApproveInput>(id, ANSWERS.approve, { gate: o.gate, by: o.by, comment: o.comment }, !!o.signal, o.key));

  gateOptions(program.command('reject <workflowId>').description('reject the open gate'))
    .requiredOption('-r, --reason <text>', 'why')
    .action((id: string, o: { gate?: string; by: string; reason: string; signal?: boolean; key?: string }) => answer<RejectInput>(id, ANSWERS.reject, { gate: o.gate, by: o.by, reason: o.reason }, !!o.signal, o.key));

  gateOptions(program.command('resolve <workflowId>').description('answer a failure gate'))
    .addOption(new Option('-a, --action <action>', 'what to do').choices(resolveInput.shape.action.options).makeOptionMandatory())
    .option('-c, --comment <text>', 'comment recorded with the decision')
    .action((id: string, o: { gate?: string; by: string; action: ResolveInput['action']; comment?: string; signal?: boolean; key?: string }) => answer<ResolveInput>(id, ANSWERS.resolve, { gate: o.gate, by: o.by, action: o.action, comment: o.comment }, !!o.signal, o.key));

  program
    .command('list')
    .description('recent runs, filtered by the search attributes')
    .option('-e, --env <environment>', 'OpsEnvironment', label)
    .option('--service <service>', 'OpsService', label)
    .option('--release <release>', 'OpsRelease', label)
    .addOption(new Option('--status <status>', 'execution status').choices(['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut']))
    .option('-n, --limit <n>', 'how many', positiveInt, 20)
    .action(async (o: { env?: string; service?: string; release?: string; status?: string; limit: number }) =>
      withClient(async (client) => {
        const clauses = [
          o.env && `OpsEnvironment = "${o.env}"`,
          o.service && `OpsService = "${o.service}"`,
          o.release && `OpsRelease = "${o.release}"`,
          o.status && `ExecutionStatus = "${o.status}"`,
        ].filter(Boolean);
        let n = 0;
        for await (const wf of client.workflow.list({ query: clauses.join(' AND ') || undefined })) {
          const env = wf.typedSearchAttributes.get(SA_ENVIRONMENT);
          console.log(`${wf.startTime.toISOString().slice(0, 19)}  ${wf.status.name.padEnd(10)} ${wf.type.padEnd(18)} ${(env ?? '').padEnd(12)} ${wf.workflowId}`);
          if (++n >= o.limit) break;
        }
        if (!n) console.log('no runs match');
      }),
    );

  program
    .command('roles <system>')
    .description("which infrastructure is production and which the hot standby, their releases, and any change embargo")
    .option('--inventory <file>', 'inventory declaring the system (default: $OPSFLOW_INVENTORY or ./inventory.yaml)')
    .option('--json', 'print the registry as JSON')
    .action(async (system: string, o: { inventory?: string; json?: boolean }) =>
      withClient(async (client) => {
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
    .action((workflow: string) => console.log(JSON.stringify(z.toJSONSchema(entryOf(workflow).input, { io: 'input' }), null, 2)));

  program
    .command('example <workflow>')
    .description('a ready-to-paste input for the Temporal UI or --input')
    .action((workflow: string) => console.log(JSON.stringify(entryOf(workflow).example, null, 2)));

  program
    .command('workflows')
    .description('the workflows opsflow offers')
    .action(() => {
      for (const [name, entry] of Object.entries(WORKFLOWS)) console.log(`${name.padEnd(20)} ${entry.description}`);
    });

  program
    .command('slack')
    .description('Slack integration')
    .command('serve')
    .description('serve the Slack interactivity endpoint (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET; OPSFLOW_SLACK_HOST/PORT)')
    .option('--inventory <file>', 'inventory with the people section (default: $OPSFLOW_INVENTORY or ./inventory.yaml)')
    .action(async (o: { inventory?: string }) => {
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

  program
    .command('codec-server')
    .description('decode encrypted payloads for the Temporal Web UI and `temporal --codec-endpoint` (keys: OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE)')
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('-p, --port <port>', 'port', positiveInt, 8234)
    .option('--origin <url>', "the Web UI's origin, allowed to call it from the browser (repeatable)", collect, [] as string[])
    .addHelpText('after', '\nWith OPSFLOW_CODEC_TOKEN set, every request must carry "Authorization: Bearer <token>".')
    .action(async (o: { host: string; port: number; origin: string[] }) => {
      const keys = codecSetting(keyringFromEnv);
      if (!keys) throw new CliError('no keys: set OPSFLOW_CODEC_KEYS or OPSFLOW_CODEC_KEY_FILE', 2);
      const origins = o.origin.length ? o.origin : ['http://127.0.0.1:8233', 'http://localhost:8233'];
      const server = await startCodecServer({ codec: new AesGcmCodec(keys), host: o.host, port: o.port, origins, token: process.env.OPSFLOW_CODEC_TOKEN || undefined });
      console.log(`codec server at ${server.url} (current key ${keys.current.id}; UI origins ${origins.join(', ')}${process.env.OPSFLOW_CODEC_TOKEN ? '; bearer token required' : ''})`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      await server.close();
    });

  registerScheduleCommands(program, { withClient, inventory: inventoryFromEnv, error: (message, exitCode) => new CliError(message, exitCode) });
  registerSigningCommands(program, { withClient, me, error: (message, exitCode) => new CliError(message, exitCode) });

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
