// The inventory: which hosts exist, how to reach them, and which keys they must present. A bad file stops the
// worker at start with the path and line of every error; which file, and its rereading while the worker runs,
// are src/workers/inventoryFromEnv.ts's.
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isNode, isScalar } from 'yaml';
import { z } from 'zod';
import { name } from '../schemas/common';
import type { GateSigners } from '../runbook/signatures/check';
import { parsePublicKey } from '../runbook/signatures/sshsig';
import type { Target } from '../schemas/common';
import { applicationSchema, checkApplications, type ApplicationConfig } from './applications';
import { kubernetesSchema, type KubernetesConfig } from './kubernetes';
import { nodeService, serviceSchema, type NodeService, type ServiceConfig } from './services';
import { awsAccountSchema, checkSystems, databaseSchema, systemSchema, type AwsAccount, type DatabaseConfig, type SystemConfig } from './systems';
import { InvalidInventory, type OpsError, UnknownTarget, unknownEnvironment } from '../common/errors';

const hostKey = z
  .string()
  .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|rsa-sha2-(256|512)) [A-Za-z0-9+/=]+( .*)?$/, 'an OpenSSH public key line such as "ssh-ed25519 AAAA..."');

/** A key that may sign gate answers: only the types the workflow's verifier knows. */
const signingKey = z
  .string()
  .regex(/^(ssh-ed25519|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+( .*)?$/, 'an OpenSSH public key line: "ssh-ed25519 AAAA..." or "ecdsa-sha2-nistp256 AAAA..."')
  .superRefine((line, ctx) => {
    try {
      parsePublicKey(line);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** Whether gate answers must be signed (see docs/gates.md, "Signed gate answers"). */
const gatesSchema = z.strictObject({ signed: z.enum(['required', 'optional']) });

const connection = {
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** Private key file; its content is read only by the activity that connects, never put in history. */
  identityFile: z.string().min(1).optional(),
  /** Use the SSH agent at $SSH_AUTH_SOCK. */
  agent: z.boolean().optional(),
  /** Name of the environment variable holding the key's passphrase. */
  passphraseEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  /** Another host of the same environment to connect through (ProxyJump). */
  jump: name.optional(),
};

/** SSH, or `local`: the worker's own machine, as the worker's user (no SSH settings apply). */
const connectionKind = z.enum(['ssh', 'local']).default('ssh');

/** The address a local host's services and checks use as {address}, unless it names one. */
const LOCAL_ADDRESS = '127.0.0.1';

const hostFields = z.strictObject({
  connection: connectionKind,
  address: z.string().min(1),
  ...connection,
  /** Pinned host keys; used instead of the known_hosts file for this host. */
  hostKeys: z.array(hostKey).min(1).optional(),
  roles: z.array(name).default([]),
  /** Per-host values that services and fleet commands use as {placeholders}, like Ansible's host variables. */
  vars: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name'), z.string()).default({}),
  /** The file holding the host's boot id, which the run guard records beside the host key. */
  bootIdFile: z.string().regex(/^\//, 'an absolute path').default('/proc/sys/kernel/random/boot_id'),
});

const hostSchema = z.preprocess(
  (h) => (h && typeof h === 'object' && (h as { connection?: unknown }).connection === 'local' ? { address: LOCAL_ADDRESS, ...h } : h),
  hostFields,
);

/** What only an SSH host can say: a local host that says it is told so, rather than having it ignored. */
const SSH_ONLY = ['user', 'port', 'identityFile', 'agent', 'passphraseEnv', 'jump', 'hostKeys'] as const;

const environmentSchema = z.strictObject({
  defaults: z.strictObject(connection).default({}),
  hosts: z.record(name, hostSchema).default({}),
  groups: z.record(name, z.array(name).min(1)).default({}),
  services: z.record(name, serviceSchema).default({}),
  /** Where runs in this environment are announced and their gates posted, unless the run names a channel. */
  notify: z.strictObject({ channel: z.string().min(1) }).optional(),
  /** The environment's Kubernetes cluster and the services deployed to it (k8sDeploy). */
  kubernetes: kubernetesSchema.optional(),
  /** Overrides the top-level `gates` for this environment's runs. */
  gates: gatesSchema.optional(),
});

export const inventorySchema = z
  .strictObject({
    /** OpenSSH known_hosts file, relative to the inventory file. */
    knownHosts: z.string().min(1).optional(),
    defaults: z.strictObject(connection).default({}),
    environments: z.record(name, environmentSchema).default({}),
    /**
     * Who is who: a click by this Slack user answers a gate as this person, and answers signed with one of these
     * keys are theirs.
     */
    people: z
      .record(
        z.string().min(1),
        z.strictObject({ slack: z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'a Slack user id such as U0123ABCD').optional(), keys: z.array(signingKey).default([]) }),
      )
      .default({}),
    /** Gates of runs in environments without their own `gates`, and of runs that name no environment. */
    gates: gatesSchema.default({ signed: 'optional' }),
    /** The Slack interactivity endpoint's keys (OPSFLOW_SLACK_SIGNING_KEY_FILE): it vouches for people by Slack user id. */
    bridges: z.strictObject({ slack: z.strictObject({ keys: z.array(signingKey).min(1) }).optional() }).default({}),
    aws: z.record(name, awsAccountSchema).default({}),
    databases: z.record(name, databaseSchema).default({}),
    systems: z.record(name, systemSchema).default({}),
    /** Applications and how to make them read-only, restart and check them (safeMigration). */
    applications: z.record(name, applicationSchema).default({}),
  })
  .superRefine((inv, ctx) => {
    checkSystems(inv, (path, message) => ctx.addIssue({ code: 'custom', path, message }));
    checkApplications(inv, (path, message) => ctx.addIssue({ code: 'custom', path, message }));
    for (const [envName, env] of Object.entries(inv.environments)) {
      for (const [group, members] of Object.entries(env.groups)) {
        if (group === 'all') ctx.addIssue({ code: 'custom', path: ['environments', envName, 'groups', group], message: '"all" is implicit: every host of the environment' });
        members.forEach((member, i) => {
          if (!env.hosts[member]) ctx.addIssue({ code: 'custom', path: ['environments', envName, 'groups', group, i], message: `unknown host "${member}"` });
        });
      }
      for (const [hostName, host] of Object.entries(env.hosts)) {
        const at = ['environments', envName, 'hosts', hostName];
        if (host.connection === 'local') {
          for (const key of SSH_ONLY) {
            if (host[key] !== undefined) ctx.addIssue({ code: 'custom', path: [...at, key], message: `a local host runs commands on the worker's machine as the worker's user: ${key} is for SSH hosts` });
          }
          continue;
        }
        const jump = host.jump ?? env.defaults.jump ?? inv.defaults.jump;
        if (jump !== undefined && jump !== hostName && !env.hosts[jump]) ctx.addIssue({ code: 'custom', path: [...at, 'jump'], message: `unknown jump host "${jump}"` });
        else if (jump !== undefined && env.hosts[jump]?.connection === 'local') ctx.addIssue({ code: 'custom', path: [...at, 'jump'], message: `"${jump}" is a local host: it cannot be a jump host` });
        if (jumpChain(env, inv.defaults, hostName) === undefined) ctx.addIssue({ code: 'custom', path: [...at, 'jump'], message: 'jump hosts form a loop' });
        const merged = { ...inv.defaults, ...env.defaults, ...host };
        if (!merged.identityFile && !merged.agent) ctx.addIssue({ code: 'custom', path: at, message: 'no way to authenticate: set identityFile or agent: true (here or in defaults)' });
        if (!merged.user) ctx.addIssue({ code: 'custom', path: at, message: 'no user: set user (here or in defaults)' });
        if (!host.hostKeys && !inv.knownHosts) ctx.addIssue({ code: 'custom', path: at, message: 'no host key to verify against: set hostKeys or the top-level knownHosts file' });
      }
      for (const [serviceName, service] of Object.entries(env.services)) {
        const at = ['environments', envName, 'services', serviceName];
        service.nodes.forEach((node, i) => {
          if (!env.hosts[node]) ctx.addIssue({ code: 'custom', path: [...at, 'nodes', i], message: `unknown host "${node}"` });
          else {
            try {
              nodeService(service, node, env.hosts[node].address, env.hosts[node].vars);
            } catch (err) {
              ctx.addIssue({ code: 'custom', path: at, message: `on ${node}: ${(err as Error).message}` });
            }
          }
        });
        if (!service.nodes.includes(service.blue)) ctx.addIssue({ code: 'custom', path: [...at, 'blue'], message: `"${service.blue}" is not one of the nodes` });
        if (service.haproxy?.via && !env.hosts[service.haproxy.via]) ctx.addIssue({ code: 'custom', path: [...at, 'haproxy', 'via'], message: `unknown host "${service.haproxy.via}"` });
        for (const node of Object.keys(service.haproxy?.servers ?? {})) {
          if (!service.nodes.includes(node)) ctx.addIssue({ code: 'custom', path: [...at, 'haproxy', 'servers', node], message: `"${node}" is not one of the nodes` });
        }
      }
    }
  });

type RawInventory = z.output<typeof inventorySchema>;
type RawEnvironment = RawInventory['environments'][string];
type ConnectionDefaults = RawEnvironment['defaults'];

function jumpChain(env: RawEnvironment, defaults: ConnectionDefaults, start: string): string[] | undefined {
  const chain: string[] = [];
  let current = start;
  for (;;) {
    const host = env.hosts[current];
    const next = host?.jump ?? env.defaults.jump ?? defaults.jump;
    if (next === undefined || next === current || !env.hosts[next]) return chain;
    if (chain.includes(next) || next === start) return undefined;
    chain.push(next);
    current = next;
  }
}

/** What a workflow may see of a host: enough to audit the run, nothing secret. */
export interface ResolvedHost {
  environment: string;
  name: string;
  address: string;
  port: number;
  user: string;
}

/** What the SSH layer needs to connect: resolved on the worker, never sent to history. */
export interface HostConnection extends ResolvedHost {
  /** `connection: local`: the worker's own machine, reached without SSH. */
  local: boolean;
  identityFile?: string;
  agent: boolean;
  passphraseEnv?: string;
  hostKeys?: string[];
  /** Jump hosts, outermost first. */
  jumps: HostConnection[];
  bootIdFile: string;
}

/** The catalogue's InvalidInventory, with the file and every problem in it. */
export class InventoryError extends (InvalidInventory as new (message: string) => Error & Pick<OpsError, 'type' | 'retryable' | 'details'>) {
  constructor(readonly file: string, readonly problems: string[]) {
    super(`invalid inventory ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

export const BUILT_IN_ENVIRONMENT = 'local';
export const BUILT_IN_HOST = 'localhost';

/** The catalogue's UnknownTarget: an activity that lets it escape fails at once, without retries. */
export const UnknownTargetError = UnknownTarget;

export class Inventory {
  constructor(
    private readonly data: RawInventory,
    private readonly source: string | undefined,
    private readonly knownHostsPath: string | undefined,
  ) {}

  /** The inventory a worker starts with when there is no inventory file: environment `local`, host `localhost`, this machine. */
  static builtIn(): Inventory {
    return new Inventory(inventorySchema.parse({ environments: { [BUILT_IN_ENVIRONMENT]: { hosts: { [BUILT_IN_HOST]: { connection: 'local' } } } } }), undefined, undefined);
  }

  /** An inventory that is whatever `latest()` says each time it is read: a worker's, which follows its file on disk. */
  static following(latest: () => Inventory): Inventory {
    return new (class extends Inventory {
      protected override current(): Inventory {
        return latest();
      }
    })(inventorySchema.parse({}), undefined, undefined);
  }

  /** The inventory in force: this one, unless it follows a file (see `following`). */
  protected current(): Inventory {
    return this;
  }

  private get raw(): RawInventory {
    return this.current().data;
  }

  /** The file it was read from; undefined for the built-in inventory. */
  get file(): string | undefined {
    return this.current().source;
  }

  get knownHostsFile(): string | undefined {
    return this.current().knownHostsPath;
  }

  environments(): string[] {
    return Object.keys(this.raw.environments);
  }

  private environment(environment: string): RawEnvironment {
    const env = this.raw.environments[environment];
    if (!env) throw unknownEnvironment(environment, this.environments(), this.file);
    return env;
  }

  /** Hosts a target names, in inventory order for groups and roles, in the given order for host lists. */
  resolve(environment: string, target: Target): ResolvedHost[] {
    const env = this.environment(environment);
    let names: string[];
    if (target.hosts) {
      const unknown = target.hosts.filter((h) => !env.hosts[h]);
      if (unknown.length) throw new UnknownTargetError(`unknown host(s) in ${environment}: ${unknown.join(', ')}`);
      names = target.hosts;
    } else if (target.group !== undefined) {
      if (target.group === 'all') names = Object.keys(env.hosts);
      else if (env.groups[target.group]) names = env.groups[target.group];
      else throw new UnknownTargetError(`unknown group "${target.group}" in ${environment} (groups: all${Object.keys(env.groups).map((g) => `, ${g}`).join('')})`);
    } else {
      const role = target.role as string;
      names = Object.entries(env.hosts).filter(([, h]) => h.roles.includes(role)).map(([n]) => n);
      if (!names.length) throw new UnknownTargetError(`no host in ${environment} has role "${role}"`);
    }
    return [...new Set(names)].map((n) => this.publicView(environment, n));
  }

  private publicView(environment: string, hostName: string): ResolvedHost {
    const c = this.connection(environment, hostName);
    return { environment, name: c.name, address: c.address, port: c.port, user: c.user };
  }

  notifyChannel(environment: string): string | undefined {
    return this.raw.environments[environment]?.notify?.channel;
  }

  /** The person a Slack user answers as; unknown users answer as `slack:<id>`, which approver lists may name. */
  personForSlackUser(slackUserId: string): string {
    return Object.entries(this.raw.people).find(([, p]) => p.slack === slackUserId)?.[0] ?? `slack:${slackUserId}`;
  }

  /** Who may sign gate answers for a run in `environment`, and whether they must. */
  gateSigners(environment?: string): GateSigners {
    const gates = (environment !== undefined ? this.raw.environments[environment]?.gates : undefined) ?? this.raw.gates;
    const people = Object.fromEntries(Object.entries(this.raw.people).map(([who, p]) => [who, { keys: p.keys, ...(p.slack ? { slack: p.slack } : {}) }]));
    return { signed: gates.signed, people, slackBridge: this.raw.bridges.slack?.keys ?? [], keyHoldersSign: true };
  }

  /** Services that HAProxy balances onto this host: it leaves their rotation while it changes. */
  balancedServicesOn(environment: string, host: string): string[] {
    return Object.entries(this.environment(environment).services)
      .filter(([, svc]) => svc.haproxy && svc.nodes.includes(host))
      .map(([svcName]) => svcName);
  }

  kubernetes(environment: string): KubernetesConfig {
    const kube = this.environment(environment).kubernetes;
    if (!kube) throw new UnknownTargetError(`environment "${environment}" has no kubernetes section in the inventory`);
    return kube;
  }

  services(environment: string): string[] {
    return Object.keys(this.environment(environment).services);
  }

  service(environment: string, serviceName: string): ServiceConfig {
    const env = this.environment(environment);
    const service = env.services[serviceName];
    if (!service) {
      const known = Object.keys(env.services);
      throw new UnknownTargetError(`unknown service "${serviceName}" in ${environment} (services: ${known.length ? known.join(', ') : 'none'})`);
    }
    return service;
  }

  /** What {placeholders} in a command mean on this host: its vars, {node}, {address} and {bootIdFile}. */
  placeholders(environment: string, hostName: string): Record<string, string> {
    const host = this.environment(environment).hosts[hostName];
    if (!host) throw new UnknownTargetError(`unknown host "${hostName}" in ${environment}`);
    return { ...host.vars, node: hostName, address: host.address, bootIdFile: host.bootIdFile };
  }

  /** The service as `node` runs it, placeholders filled with the node's values. */
  nodeService(environment: string, serviceName: string, node: string): NodeService {
    const host = this.environment(environment).hosts[node];
    return nodeService(this.service(environment, serviceName), node, host.address, host.vars);
  }

  awsAccount(account: string): AwsAccount {
    return this.named('AWS account', this.raw.aws, account);
  }

  database(database: string): DatabaseConfig {
    return this.named('database', this.raw.databases, database);
  }

  systems(): string[] {
    return Object.keys(this.raw.systems);
  }

  application(application: string): ApplicationConfig {
    return this.named('application', this.raw.applications, application);
  }

  system(system: string): SystemConfig {
    return this.named('system', this.raw.systems, system);
  }

  private named<T>(what: string, table: Record<string, T>, key: string): T {
    const found = table[key];
    if (found === undefined) {
      const known = Object.keys(table);
      throw new UnknownTargetError(`unknown ${what} "${key}" (the inventory has: ${known.length ? known.join(', ') : 'none'})`);
    }
    return found;
  }

  connection(environment: string, hostName: string): HostConnection {
    const env = this.environment(environment);
    const host = env.hosts[hostName];
    if (!host) throw new UnknownTargetError(`unknown host "${hostName}" in ${environment}`);
    if (host.connection === 'local') {
      return { environment, name: hostName, address: host.address, port: 0, user: userInfo().username, local: true, agent: false, bootIdFile: host.bootIdFile, jumps: [] };
    }
    const merged = { ...this.raw.defaults, ...env.defaults, ...stripUndefined(host) };
    const chain = jumpChain(env, this.raw.defaults, hostName) ?? [];
    return {
      environment,
      name: hostName,
      address: host.address,
      port: merged.port ?? 22,
      user: merged.user as string,
      identityFile: merged.identityFile ? this.filePath(merged.identityFile) : undefined,
      agent: merged.agent ?? false,
      passphraseEnv: merged.passphraseEnv,
      hostKeys: host.hostKeys,
      bootIdFile: host.bootIdFile,
      local: false,
      jumps: chain.reverse().map((j) => ({ ...this.connection(environment, j), jumps: [] })),
    };
  }

  /** A path from the inventory, relative to the inventory file. */
  filePath(p: string): string {
    if (p.startsWith('~/')) return path.join(homedir(), p.slice(2));
    return path.resolve(this.file ? path.dirname(this.file) : process.cwd(), p);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function parseInventory(text: string, file: string): Inventory {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length) throw new InventoryError(file, doc.errors.map((e) => `${where(e.pos[0])}: ${e.message.split('\n')[0]}`));

  const parsed = inventorySchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new InventoryError(
      file,
      parsed.error.issues.map((issue) => {
        // Point at the deepest node that exists: a missing key is reported at its parent.
        let node: unknown;
        for (let depth = issue.path.length; depth >= 0 && !isNode(node); depth--) node = doc.getIn(issue.path.slice(0, depth) as (string | number)[], true);
        let offset = isNode(node) ? node.range?.[0] : undefined;
        // An unknown key (a typo such as `adress`) is pointed at itself, not at the start of its mapping.
        if (issue.code === 'unrecognized_keys' && isMap(node)) {
          const key = node.items.find((pair) => isScalar(pair.key) && pair.key.value === issue.keys[0])?.key;
          if (isNode(key)) offset = key.range?.[0] ?? offset;
        }
        return `${where(offset)}: ${issue.path.join('.') || '(top)'}: ${issue.message}`;
      }),
    );
  }
  const knownHosts = parsed.data.knownHosts ? path.resolve(path.dirname(file), parsed.data.knownHosts) : undefined;
  const inventory = new Inventory(parsed.data, file, knownHosts);
  // Missing files are reported together, so one edit fixes them all.
  const missingFiles = inventory
    .environments()
    .flatMap((env) => Object.keys(parsed.data.environments[env].hosts).map((h) => inventory.connection(env, h)))
    .filter((c) => c.identityFile && !existsSync(c.identityFile))
    .map((c) => `${file}: environments.${c.environment}.hosts.${c.name}: identityFile not found: ${c.identityFile}`);
  if (knownHosts && !existsSync(knownHosts)) {
    const node = doc.get('knownHosts', true);
    missingFiles.unshift(`${where(isNode(node) ? node.range?.[0] : undefined)}: knownHosts: file not found: ${knownHosts}`);
  }
  if (missingFiles.length) throw new InventoryError(file, missingFiles);
  return inventory;
}

export function loadInventory(file: string): Inventory {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new InventoryError(absolute, [`${absolute}: ${(err as Error).message}`]);
  }
  return parseInventory(text, absolute);
}
