// The inventory loader: what a valid file resolves to, and how every kind of mistake is reported.
import { mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInventory } from '../src/common/errors';
import { Inventory, InventoryError, UnknownTargetError, loadInventory, parseInventory } from '../src/config/inventory';
import { chooseInventory, inventoryFromEnv, watchedInventory } from '../src/workers/inventoryFromEnv';

const PINNED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKuRiamDGWPKK+BXVosD8Vgzub1mrXmPG08kAY6wJ6tk';

const VALID = `# a production-like inventory
knownHosts: known_hosts
defaults:
  user: deploy
  port: 2200
  identityFile: keys/id_ed25519
environments:
  prod:
    defaults:
      user: ops
      jump: bastion
    hosts:
      bastion:
        address: 10.0.0.1
        port: 22
      gw:
        address: 10.0.0.2
      web1:
        address: 10.0.1.1
        roles: [web, canary]
      web2:
        address: 10.0.1.2
        user: alice
        identityFile: ~/.ssh/id_web
        roles: [web]
      db1:
        address: 10.0.2.1
        port: 5022
        jump: gw
        agent: true
        passphraseEnv: DB_KEY_PASSPHRASE
        hostKeys: ["${PINNED}"]
    groups:
      web: [web2, web1]
      db: [db1]
  staging:
    hosts:
      s1: {address: 10.1.0.1}
`;

/** A directory holding the files the inventories name: keys/id_ed25519, known_hosts and ~/.ssh/id_web. */
let dir: string;
let home: string;
const savedHome = process.env.HOME;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'opsflow-inventory-'));
  mkdirSync(path.join(dir, 'keys'));
  writeFileSync(path.join(dir, 'keys/id_ed25519'), 'not read by the loader\n');
  writeFileSync(path.join(dir, 'known_hosts'), '');
  // os.homedir() follows $HOME, so `~/` paths land in a directory this test owns.
  home = path.join(dir, 'home');
  mkdirSync(path.join(home, '.ssh'), { recursive: true });
  writeFileSync(path.join(home, '.ssh/id_web'), 'not read by the loader\n');
  process.env.HOME = home;
});

afterAll(() => {
  process.env.HOME = savedHome;
});

/** Parses `text` as if it were `inventory.yaml` in the test directory. */
const parse = (text: string) => parseInventory(text, path.join(dir, 'inventory.yaml'));

/** The problems an invalid inventory reports, one string per problem. */
function problems(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(InventoryError);
    const e = err as InventoryError;
    expect(e.file).toBe(path.join(dir, 'inventory.yaml'));
    for (const p of e.problems) expect(e.message).toContain(p);
    return e.problems;
  }
  throw new Error('the inventory was accepted');
}

/** `inventory.yaml:LINE:` of the first line of `text` that contains `needle`. */
function at(text: string, needle: string): string {
  const line = text.split('\n').findIndex((l) => l.includes(needle));
  if (line < 0) throw new Error(`no line contains ${needle}`);
  return `inventory.yaml:${line + 1}:`;
}

/** A minimal valid inventory with one host `a` in environment `test`, extended by `hostLines`. */
const oneHost = (hostLines: string[], top: string[] = ['knownHosts: known_hosts', 'defaults:', '  user: deploy', '  agent: true']) =>
  [...top, 'environments:', '  test:', '    hosts:', '      a:', '        address: 10.0.0.1', ...hostLines.map((l) => `        ${l}`), ''].join('\n');

describe('a valid inventory', () => {
  let inv: Inventory;
  beforeAll(() => {
    writeFileSync(path.join(dir, 'inventory.yaml'), VALID);
    inv = loadInventory(path.join(dir, 'inventory.yaml'));
  });

  it('lists its environments and finds the known_hosts file next to it', () => {
    expect(inv.environments()).toEqual(['prod', 'staging']);
    expect(inv.file).toBe(path.join(dir, 'inventory.yaml'));
    expect(inv.knownHostsFile).toBe(path.join(dir, 'known_hosts'));
  });

  it('resolves a group in the order the group lists its hosts', () => {
    expect(inv.resolve('prod', { group: 'web' }).map((h) => h.name)).toEqual(['web2', 'web1']);
    expect(inv.resolve('prod', { group: 'db' })).toEqual([{ environment: 'prod', name: 'db1', address: '10.0.2.1', port: 5022, user: 'ops' }]);
  });

  it('has an implicit group "all" with every host of the environment, in inventory order', () => {
    expect(inv.resolve('prod', { group: 'all' }).map((h) => h.name)).toEqual(['bastion', 'gw', 'web1', 'web2', 'db1']);
    expect(inv.resolve('staging', { group: 'all' }).map((h) => h.name)).toEqual(['s1']);
  });

  it('resolves a role to every host that has it, in inventory order', () => {
    expect(inv.resolve('prod', { role: 'web' }).map((h) => h.name)).toEqual(['web1', 'web2']);
    expect(inv.resolve('prod', { role: 'canary' }).map((h) => h.name)).toEqual(['web1']);
  });

  it('resolves an explicit host list in the given order, each host once', () => {
    expect(inv.resolve('prod', { hosts: ['db1', 'web1', 'db1'] }).map((h) => h.name)).toEqual(['db1', 'web1']);
  });

  it('merges defaults: top-level < environment < host', () => {
    const web1 = inv.connection('prod', 'web1');
    expect(web1).toMatchObject({ user: 'ops', port: 2200, agent: false, identityFile: path.join(dir, 'keys/id_ed25519') });
    const web2 = inv.connection('prod', 'web2');
    expect(web2).toMatchObject({ user: 'alice', port: 2200 });
    expect(inv.connection('prod', 'bastion')).toMatchObject({ user: 'ops', port: 22 });
    expect(inv.connection('prod', 'db1')).toMatchObject({ user: 'ops', port: 5022, agent: true, passphraseEnv: 'DB_KEY_PASSPHRASE', hostKeys: [PINNED] });
    // An environment without defaults takes the top-level ones.
    expect(inv.connection('staging', 's1')).toMatchObject({ user: 'deploy', port: 2200, identityFile: path.join(dir, 'keys/id_ed25519'), jumps: [] });
  });

  it('never puts connection secrets in what a workflow sees', () => {
    for (const h of inv.resolve('prod', { group: 'all' })) expect(Object.keys(h).sort()).toEqual(['address', 'environment', 'name', 'port', 'user']);
  });

  it('expands ~/ to the home directory and resolves relative paths against the inventory file, not the cwd', () => {
    expect(inv.connection('prod', 'web2').identityFile).toBe(path.join(home, '.ssh/id_web'));
    expect(process.cwd()).not.toBe(dir);
    expect(inv.connection('prod', 'web1').identityFile).toBe(path.join(dir, 'keys/id_ed25519'));
    // The same through a relative path to the inventory.
    const relative = loadInventory(path.relative(process.cwd(), path.join(dir, 'inventory.yaml')));
    expect(relative.file).toBe(path.join(dir, 'inventory.yaml'));
    expect(relative.connection('prod', 'web1').identityFile).toBe(path.join(dir, 'keys/id_ed25519'));
  });

  it('builds jump chains outermost first, each jump host with its own connection settings', () => {
    const db1 = inv.connection('prod', 'db1');
    expect(db1.jumps.map((j) => j.name)).toEqual(['bastion', 'gw']);
    expect(db1.jumps[0]).toMatchObject({ address: '10.0.0.1', port: 22, user: 'ops', identityFile: path.join(dir, 'keys/id_ed25519'), jumps: [] });
    expect(db1.jumps[1]).toMatchObject({ address: '10.0.0.2', port: 2200, jumps: [] });
    // The environment's default jump host applies to every other host, and not to itself.
    expect(inv.connection('prod', 'web1').jumps.map((j) => j.name)).toEqual(['bastion']);
    expect(inv.connection('prod', 'bastion').jumps).toEqual([]);
  });
});

describe('unknown targets', () => {
  let inv: Inventory;
  beforeAll(() => {
    inv = parse(VALID);
  });

  const message = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(UnknownTargetError);
      return (err as Error).message;
    }
    throw new Error('no UnknownTargetError');
  };

  // What a newcomer meets first: the message says where environments come from.
  it('names the environments the inventory has, and where others come from', () => {
    const advice = 'the built-in inventory (used when there is no inventory file) has the environment `local`, this machine; `opsflow sandbox up` writes sandbox/inventory.yaml';
    expect(message(() => inv.resolve('nope', { group: 'all' }))).toContain(`unknown environment "nope" (the inventory ${inv.file} has: prod, staging); ${advice}`);
    expect(message(() => Inventory.builtIn().resolve('staging', { group: 'all' }))).toContain(`unknown environment "staging" (the built-in inventory has: local); ${advice}`);
  });

  it('names the groups of the environment, "all" included', () => {
    expect(message(() => inv.resolve('prod', { group: 'cache' }))).toBe('unknown group "cache" in prod (groups: all, web, db)');
    expect(message(() => inv.resolve('staging', { group: 'web' }))).toBe('unknown group "web" in staging (groups: all)');
  });

  it('names every unknown host of a host list', () => {
    expect(message(() => inv.resolve('prod', { hosts: ['web1', 'web9', 's1'] }))).toBe('unknown host(s) in prod: web9, s1');
    expect(message(() => inv.connection('staging', 'web1'))).toBe('unknown host "web1" in staging');
  });

  it('says when no host has a role', () => {
    expect(message(() => inv.resolve('prod', { role: 'cache' }))).toBe('no host in prod has role "cache"');
  });
});

describe('an invalid inventory', () => {
  it('reports a YAML syntax error with file:line:col', () => {
    const text = oneHost(['roles: [web, db', 'port: 22']);
    const [p, ...rest] = problems(text);
    expect(rest).toEqual([]);
    expect(p).toMatch(new RegExp(`^${path.join(dir, 'inventory.yaml')}:\\d+:\\d+: `));
  });

  it('reports a YAML syntax error on the line it is on', () => {
    const text = oneHost(['port: 22', '  user: x']);
    const [p] = problems(text);
    expect(p).toContain(`${at(text, 'port: 22')}15: Nested mappings are not allowed`);
  });

  it('reports a wrongly typed value at its own line and column', () => {
    const text = oneHost(['port: "2222"']);
    const [p, ...rest] = problems(text);
    expect(rest).toEqual([]);
    expect(p).toContain(`${at(text, 'port: "2222"')}15: environments.test.hosts.a.port:`);
    expect(p).toContain('expected number');
  });

  it('reports an unknown key (a typo) at the key', () => {
    const text = oneHost(['adress: 10.0.0.2']);
    const [p] = problems(text);
    expect(p).toContain(`${at(text, 'adress:')}9: environments.test.hosts.a: Unrecognized key: "adress"`);
  });

  it('reports a missing required field at its parent', () => {
    const text = ['knownHosts: known_hosts', 'defaults: {user: u, agent: true}', 'environments:', '  test:', '    hosts:', '      a:', '        port: 22', ''].join('\n');
    const [p] = problems(text);
    expect(p).toContain(`${at(text, 'port: 22')}9: environments.test.hosts.a.address:`);
  });

  it('reports a group that names an unknown host, at the member', () => {
    const text = `${oneHost([])}    groups:\n      web: [a, ghost]\n`;
    const [p] = problems(text);
    expect(p).toContain(`${at(text, 'web: [a, ghost]')}16: environments.test.groups.web.1: unknown host "ghost"`);
  });

  it('refuses a group called "all"', () => {
    const [p] = problems(`${oneHost([])}    groups:\n      all: [a]\n`);
    expect(p).toContain('"all" is implicit');
  });

  it('reports an unknown jump host', () => {
    const text = oneHost(['jump: bastion']);
    const [p] = problems(text);
    expect(p).toContain(`${at(text, 'jump: bastion')}15: environments.test.hosts.a.jump: unknown jump host "bastion"`);
  });

  it('reports a jump loop on every host whose chain runs into it', () => {
    const text = [
      'knownHosts: known_hosts',
      'defaults: {user: deploy, agent: true}',
      'environments:',
      '  test:',
      '    hosts:',
      '      a: {address: 10.0.0.1, jump: b}',
      '      b: {address: 10.0.0.2, jump: c}',
      '      c: {address: 10.0.0.3, jump: a}',
      '      d: {address: 10.0.0.4, jump: a}',
      '',
    ].join('\n');
    const ps = problems(text);
    // d is not in the loop, but its chain runs into it: it cannot be reached either.
    expect(ps).toHaveLength(4);
    for (const [i, host] of ['a', 'b', 'c', 'd'].entries()) expect(ps[i]).toContain(`environments.test.hosts.${host}.jump: jump hosts form a loop`);
    expect(ps[0]).toContain(`${at(text, 'jump: b')}36:`);
  });

  it('reports a host with neither identityFile nor agent', () => {
    const text = oneHost([], ['knownHosts: known_hosts', 'defaults:', '  user: deploy']);
    const [p] = problems(text);
    expect(p).toContain(`${at(text, 'address: 10.0.0.1')}9: environments.test.hosts.a: no way to authenticate`);
  });

  it('reports a host with no user', () => {
    const [p] = problems(oneHost([], ['knownHosts: known_hosts', 'defaults:', '  agent: true']));
    expect(p).toContain('environments.test.hosts.a: no user');
  });

  it('reports a host with no pinned hostKeys when there is no known_hosts file', () => {
    const [p] = problems(oneHost([], ['defaults:', '  user: deploy', '  agent: true']));
    expect(p).toContain('environments.test.hosts.a: no host key to verify against');
    // Pinned keys are enough.
    expect(parse(oneHost([`hostKeys: ["${PINNED}"]`], ['defaults:', '  user: deploy', '  agent: true'])).knownHostsFile).toBeUndefined();
  });

  it('reports a known_hosts file that does not exist', () => {
    const text = oneHost([], ['knownHosts: ../missing_known_hosts', 'defaults:', '  user: deploy', '  agent: true']);
    const [p, ...rest] = problems(text);
    expect(rest).toEqual([]);
    expect(p).toContain(`${at(text, 'knownHosts:')}13: knownHosts: file not found: ${path.resolve(dir, '../missing_known_hosts')}`);
  });

  it('reports an identityFile that does not exist, resolved against the inventory file', () => {
    const [p] = problems(oneHost(['identityFile: keys/nope']));
    expect(p).toContain(`environments.test.hosts.a: identityFile not found: ${path.join(dir, 'keys/nope')}`);
  });

  it('reports an inventory file that cannot be read', () => {
    const missing = path.join(dir, 'nope.yaml');
    expect(() => loadInventory(missing)).toThrow(InventoryError);
    expect(() => loadInventory(missing)).toThrow(`${missing}: ENOENT`);
  });

  it('reports every structural error at once, each at its own line', () => {
    const text = [
      'knownHosts: known_hosts',
      'defaults:',
      '  user: deploy',
      '  agent: maybe',
      'environments:',
      '  test:',
      '    hosts:',
      '      a:',
      '        address: 10.0.0.1',
      '        port: "22"',
      '        adress: 10.0.0.9',
      '      b:',
      '        port: 70000',
      '',
    ].join('\n');
    const ps = problems(text);
    expect(ps).toHaveLength(5);
    for (const [needle, what] of [
      ['agent: maybe', 'defaults.agent: Invalid input: expected boolean'],
      ['port: "22"', 'hosts.a.port: Invalid input: expected number'],
      ['adress:', 'hosts.a: Unrecognized key: "adress"'],
      ['port: 70000', 'hosts.b.port: Too big'],
      ['port: 70000', 'hosts.b.address: Invalid input'],
    ]) {
      expect(ps.find((p) => p.includes(what))).toContain(at(text, needle));
    }
  });

  it('reports every cross-reference error at once, each at its own line', () => {
    const text = [
      'knownHosts: known_hosts',
      'defaults:',
      '  user: deploy',
      'environments:',
      '  test:',
      '    hosts:',
      '      a:',
      '        address: 10.0.0.1',
      '        agent: true',
      '        jump: nowhere',
      '      b:',
      '        address: 10.0.0.2',
      '    groups:',
      '      web: [a, ghost]',
      '',
    ].join('\n');
    const ps = problems(text);
    expect(ps).toHaveLength(3);
    for (const [needle, what] of [
      ['jump: nowhere', 'hosts.a.jump: unknown jump host "nowhere"'],
      ['address: 10.0.0.2', 'hosts.b: no way to authenticate'],
      ['web: [a, ghost]', 'groups.web.1: unknown host "ghost"'],
    ]) {
      expect(ps.find((p) => p.includes(what))).toContain(at(text, needle));
    }
  });

  it('reports every missing file at once', () => {
    const text = [
      'knownHosts: missing_known_hosts',
      'defaults: {user: deploy}',
      'environments:',
      '  test:',
      '    hosts:',
      '      a: {address: 10.0.0.1, identityFile: keys/gone-a}',
      '      b: {address: 10.0.0.2, identityFile: ~/gone-b}',
      '',
    ].join('\n');
    const ps = problems(text);
    expect(ps).toHaveLength(3);
    expect(ps[0]).toContain('knownHosts: file not found');
    expect(ps[1]).toContain(`hosts.a: identityFile not found: ${path.join(dir, 'keys/gone-a')}`);
    expect(ps[2]).toContain(`hosts.b: identityFile not found: ${path.join(home, 'gone-b')}`);
  });
});

describe('systems', () => {
  const system = (over: string[] = []) =>
    oneHost([], [
      'knownHosts: known_hosts',
      'defaults: {user: deploy, agent: true}',
      'aws:',
      '  hk: {region: ap-east-1, profile: Upstream}',
      '  eu: {region: eu-west-3}',
      'databases:',
      '  db-hk: {host: 127.0.0.1, database: gigadb, user: gigadb, passwordEnv: PG_HK}',
      'systems:',
      '  gigadb:',
      '    roles: {production: hk, standby: eu}',
      '    dns: {provider: route53, account: hk, zoneId: Z1}',
      '    infrastructures:',
      '      hk: {aws: hk, environment: test, database: db-hk, addresses: {gigadb.org: {eip: eip-live}, files.gigadb.org: {address: 192.0.2.10}}, deploy: {host: a, command: [deploy, "{release}"]}}',
      ...over,
    ]);

  it('accepts a complete system and gives its parts by name', () => {
    const inv = parse(system(['      eu: {aws: eu, addresses: {gigadb.org: {address: 192.0.2.20}, files.gigadb.org: {address: 192.0.2.21}}}']));
    expect(inv.systems()).toEqual(['gigadb']);
    expect(inv.system('gigadb').roles).toEqual({ production: 'hk', standby: 'eu' });
    expect(inv.awsAccount('hk')).toMatchObject({ region: 'ap-east-1', profile: 'Upstream' });
    expect(inv.database('db-hk')).toMatchObject({ port: 5432, checks: [] });
    expect(() => inv.system('nosuch')).toThrow(UnknownTargetError);
  });

  it('reports every broken reference of a system', () => {
    const text = system(['      eu: {aws: nosuch, database: nodb, addresses: {gigadb.org: {address: 192.0.2.20}}, deploy: {host: b, command: [x]}}']);
    const ps = problems(text);
    expect(ps.join('\n')).toContain('systems.gigadb.infrastructures.eu.aws: unknown AWS account "nosuch"');
    expect(ps.join('\n')).toContain('systems.gigadb.infrastructures.eu.database: unknown database "nodb"');
    expect(ps.join('\n')).toContain('systems.gigadb.infrastructures.eu.deploy: a host command needs the infrastructure to name its environment');
    expect(ps.join('\n')).toContain('systems.gigadb.infrastructures.eu.addresses: no address for "files.gigadb.org", which the other infrastructure has');
  });

  it('checks that a deploy through a child run names a service of the environment', () => {
    const eu = (deploy: string) => `      eu: {aws: eu, environment: test, addresses: {gigadb.org: {address: 192.0.2.20}, files.gigadb.org: {address: 192.0.2.21}}, deploy: ${deploy}}`;
    expect(problems(system([eu('{blueGreenDeploy: {service: web, git: {repo: "git@example.org:app.git"}}}')])).join('\n')).toContain('infrastructures.eu.deploy.blueGreenDeploy.service: unknown service "web" in test');
    expect(problems(system([eu('{k8sDeploy: {service: web, image: "registry.example.org/app:{release}"}}')])).join('\n')).toContain('infrastructures.eu.deploy.k8sDeploy.service: unknown Kubernetes service "web" in test');
    expect(problems(system([eu('{blueGreenDeploy: {service: web}}')])).join('\n')).toContain('give exactly one of git or tarball');
  });

  it('needs exactly two infrastructures and distinct roles', () => {
    const text = system([]).replace('standby: eu', 'standby: hk');
    const ps = problems(text).join('\n');
    expect(ps).toContain('a system has exactly two infrastructures (has 1)');
    expect(ps).toContain('production and standby must be different infrastructures');
  });
});

describe('local hosts', () => {
  const local = (hostLines: string[] = []) =>
    ['knownHosts: known_hosts', 'defaults:', '  user: deploy', '  identityFile: keys/id_ed25519', '  port: 2200', 'environments:', '  here:', '    hosts:', '      me:', '        connection: local', ...hostLines.map((l) => `        ${l}`), ''].join('\n');

  it("is the worker's machine as the worker's user: no address needed, SSH defaults do not apply", () => {
    const inv = parse(local());
    expect(inv.resolve('here', { group: 'all' })).toEqual([{ environment: 'here', name: 'me', address: '127.0.0.1', port: 0, user: userInfo().username }]);
    expect(inv.connection('here', 'me')).toMatchObject({ local: true, jumps: [], bootIdFile: '/proc/sys/kernel/random/boot_id' });
    expect(inv.connection('here', 'me').identityFile).toBeUndefined();
    expect(inv.placeholders('here', 'me')).toMatchObject({ node: 'me', address: '127.0.0.1' });
    expect(parse(local(['address: 10.9.9.9'])).placeholders('here', 'me').address).toBe('10.9.9.9');
  });

  it('refuses SSH settings on a local host, each at its line, and a local host as a jump host', () => {
    const text = local(['user: root', 'port: 22', 'jump: me']);
    const ps = problems(text);
    expect(ps.find((p) => p.includes('hosts.me.user:'))).toContain(`${at(text, 'user: root')}`);
    expect(ps.join('\n')).toContain("a local host runs commands on the worker's machine as the worker's user: port is for SSH hosts");
    expect(ps.join('\n')).toContain('jump is for SSH hosts');
    const jumping = [...local().split('\n').slice(0, -1), '      far:', '        address: 10.0.0.1', '        jump: me', ''].join('\n');
    expect(problems(jumping).join('\n')).toContain('"me" is a local host: it cannot be a jump host');
  });

  it('the built-in inventory is environment "local" with host "localhost", a local host', () => {
    const inv = Inventory.builtIn();
    expect(inv.file).toBeUndefined();
    expect(inv.environments()).toEqual(['local']);
    expect(inv.connection('local', 'localhost')).toMatchObject({ name: 'localhost', local: true });
  });
});

describe('which inventory', () => {
  let cwd: string;
  let saved: { cwd: string; env?: string };
  beforeAll(() => {
    saved = { cwd: process.cwd(), env: process.env.OPSFLOW_INVENTORY };
    cwd = mkdtempSync(path.join(tmpdir(), 'opsflow-which-'));
    process.chdir(cwd);
    delete process.env.OPSFLOW_INVENTORY;
  });
  afterAll(() => {
    process.chdir(saved.cwd);
    if (saved.env !== undefined) process.env.OPSFLOW_INVENTORY = saved.env;
  });
  const envWith = (name: string) => `environments:\n  ${name}:\n    hosts:\n      box: { connection: local }\n`;

  // In order: --inventory, OPSFLOW_INVENTORY, ./inventory.yaml, sandbox/inventory.yaml, the built-in one.
  it('takes the first there is, and a worker follows files that appear or change after it started', () => {
    const watched = watchedInventory();
    expect(chooseInventory()).toEqual({ why: 'built-in' });
    expect(watched.environments()).toEqual(['local']);
    mkdirSync('sandbox');
    writeFileSync('sandbox/inventory.yaml', envWith('sandbox'));
    expect(chooseInventory()).toEqual({ file: path.join(cwd, 'sandbox/inventory.yaml'), why: 'sandbox/inventory.yaml' });
    expect(watched.environments()).toEqual(['sandbox']);
    expect(watched.file).toBe(path.join(cwd, 'sandbox/inventory.yaml'));
    // Rewritten in place, as the sandbox does (write, then rename): a new modification time.
    writeFileSync('sandbox/inventory.yaml.tmp', envWith('sandbox2'));
    utimesSync('sandbox/inventory.yaml.tmp', new Date(), new Date(Date.now() + 5_000));
    renameSync('sandbox/inventory.yaml.tmp', 'sandbox/inventory.yaml');
    expect(watched.environments()).toEqual(['sandbox2']);
    writeFileSync('inventory.yaml', envWith('mine'));
    expect(watched.environments()).toEqual(['mine']);
    writeFileSync('other.yaml', envWith('other'));
    process.env.OPSFLOW_INVENTORY = 'other.yaml';
    try {
      expect(chooseInventory().why).toBe('OPSFLOW_INVENTORY');
      expect(watched.environments()).toEqual(['other']);
      expect(chooseInventory('inventory.yaml')).toEqual({ file: path.join(cwd, 'inventory.yaml'), why: '--inventory' });
    } finally {
      delete process.env.OPSFLOW_INVENTORY;
    }
    // `opsflow sandbox down` removes its file: back to the built-in inventory.
    rmSync('inventory.yaml');
    rmSync('sandbox/inventory.yaml');
    expect(watched.environments()).toEqual(['local']);
  });

  it('a file that became invalid fails the steps that read it, naming its problems, until it is fixed', () => {
    writeFileSync('inventory.yaml', envWith('mine'));
    const watched = watchedInventory();
    expect(watched.environments()).toEqual(['mine']);
    writeFileSync('inventory.yaml', `${envWith('mine')}bogus: 1\n`);
    utimesSync('inventory.yaml', new Date(), new Date(Date.now() + 10_000));
    expect(() => watched.environments()).toThrow(InventoryError);
    expect(() => watched.environments()).toThrow('Unrecognized key: "bogus"');
    writeFileSync('inventory.yaml', envWith('fixed'));
    utimesSync('inventory.yaml', new Date(), new Date(Date.now() + 20_000));
    expect(watched.environments()).toEqual(['fixed']);
  });

  it('an inventory file that was named but is not there says what to do', () => {
    process.env.OPSFLOW_INVENTORY = 'nope.yaml';
    try {
      expect(() => inventoryFromEnv()).toThrow(InvalidInventory);
      expect(() => inventoryFromEnv()).toThrow(
        `no inventory file at ${path.join(cwd, 'nope.yaml')} (named by OPSFLOW_INVENTORY): fix the path, or leave OPSFLOW_INVENTORY out to use ./inventory.yaml, then sandbox/inventory.yaml (\`opsflow sandbox up\` writes it), then the built-in inventory`,
      );
    } finally {
      delete process.env.OPSFLOW_INVENTORY;
    }
  });
});
