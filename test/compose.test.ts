import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it, expect } from 'vitest';
import { parse } from 'yaml';
import { DYNAMIC_CONFIG_FILE, dynamicConfigArgs } from '../src/temporal/devServer';

// Static checks of docker-compose.temporal.yml. No Docker is needed: the file has
// to be right by construction, so these pin down the properties that matter.

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}

interface Service {
  image?: string;
  restart?: string;
  healthcheck?: Healthcheck;
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: Array<string | { host_ip?: string; target?: number; published?: string | number }>;
  entrypoint?: string | string[];
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
}

interface ComposeFile {
  services: Record<string, Service & { configs?: Array<{ source: string; target: string }> }>;
  configs?: Record<string, { file?: string; content?: string }>;
}

const composePath = resolve(__dirname, '..', 'docker-compose.temporal.yml');
const serverConfigPath = resolve(__dirname, '..', 'config/temporal/opsflow.yaml');
const clusterScript = readFileSync(resolve(__dirname, '..', 'scripts/cluster.sh'), 'utf8');
const compose = parse(readFileSync(composePath, 'utf8')) as ComposeFile;
const services = compose.services;

const ONE_SHOT_JOBS = ['temporal-schema', 'temporal-namespace'];
const LONG_RUNNING = ['postgresql', 'temporal', 'temporal-ui'];

/** Resolves `${VAR:-default}` / `${VAR-default}` to its default and `${VAR}` to '', as Compose does with VAR unset. */
function withDefaults(value: string): string {
  return value
    .replace(/\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}/g, '$1')
    .replace(/\$\{[A-Za-z_][A-Za-z0-9_]*\}/g, '')
    .replace(/\$\$/g, '$');
}

/** The shell script a one-shot job runs (entrypoint + command joined). */
function scriptOf(name: string): string {
  const { entrypoint = [], command = [] } = services[name];
  return [entrypoint, command].flat().join('\n');
}

function dependencyCondition(from: string, to: string): string | undefined {
  const deps = services[from].depends_on;
  if (!deps || Array.isArray(deps)) return undefined;
  return deps[to]?.condition;
}

/** Published ports as { hostIp, mapping: "host:container" }, from the short ("ip:host:container") or long syntax. */
function publishedPorts(service: Service): Array<{ hostIp?: string; mapping: string }> {
  return (service.ports ?? []).map((port) => {
    if (typeof port !== 'string') return { hostIp: port.host_ip, mapping: `${port.published}:${port.target}` };
    const parts = withDefaults(port).split(':');
    return parts.length === 3 ? { hostIp: parts[0], mapping: `${parts[1]}:${parts[2]}` } : { mapping: parts.join(':') };
  });
}

describe('docker-compose.temporal.yml', () => {
  it('parses into a set of services', () => {
    expect(compose).toBeTypeOf('object');
    expect(services).toBeTypeOf('object');
  });

  it('defines the Temporal stack services', () => {
    expect(Object.keys(services).sort()).toEqual([...LONG_RUNNING, ...ONE_SHOT_JOBS].sort());
  });

  it('pins every image to an exact version, never latest', () => {
    for (const [name, service] of Object.entries(services)) {
      const image = service.image ?? '';
      const match = /^([^@\s]+):([^:@/\s]+)$/.exec(image);
      expect(match, `${name}: image "${image}" has no explicit tag`).not.toBeNull();
      const tag = match![2];
      expect(tag, `${name}: latest is not a version`).not.toBe('latest');
      expect(tag, `${name}: tag "${tag}" is not an exact version`).toMatch(/^\d+\.\d+(\.\d+)?$/);
    }
  });

  it('uses the plain server image with admin-tools of the same version', () => {
    const server = services.temporal.image!;
    expect(server).toMatch(/^temporalio\/server:/);
    const version = server.split(':')[1];
    for (const job of ONE_SHOT_JOBS) {
      expect(services[job].image).toBe(`temporalio/admin-tools:${version}`);
    }
    expect(services.postgresql.image).toMatch(/^postgres:16\./);
    expect(services['temporal-ui'].image).toMatch(/^temporalio\/ui:/);
  });

  it('gives every long-running service a healthcheck and restart: unless-stopped', () => {
    for (const name of LONG_RUNNING) {
      const { healthcheck, restart } = services[name];
      expect(healthcheck?.disable, `${name}: healthcheck disabled`).not.toBe(true);
      expect(healthcheck?.test, `${name}: no healthcheck`).toBeTruthy();
      expect(restart, `${name}: restart policy`).toBe('unless-stopped');
    }
    expect(String(services.postgresql.healthcheck!.test)).toContain('pg_isready');
  });

  it('never restarts the one-shot jobs forever', () => {
    for (const name of ONE_SHOT_JOBS) {
      expect(services[name].restart ?? 'no', name).not.toMatch(/always|unless-stopped/);
    }
  });

  it('chains startup with the right depends_on conditions', () => {
    expect(dependencyCondition('temporal-schema', 'postgresql')).toBe('service_healthy');
    expect(dependencyCondition('temporal', 'temporal-schema')).toBe('service_completed_successfully');
    expect(dependencyCondition('temporal-namespace', 'temporal')).toBe('service_healthy');
    expect(dependencyCondition('temporal-ui', 'temporal')).toBe('service_healthy');
  });

  it('publishes ports on 127.0.0.1 only by default', () => {
    const published: string[] = [];
    for (const [name, service] of Object.entries(services)) {
      for (const { hostIp, mapping } of publishedPorts(service)) {
        expect(hostIp, `${name}: ${mapping} is not bound to loopback`).toBe('127.0.0.1');
        published.push(`${name} ${mapping}`);
      }
    }
    expect(published.sort()).toEqual(['temporal 7233:7233', 'temporal-ui 8080:8080']);
  });

  it('creates and migrates both databases with the postgres12 schema', () => {
    const script = scriptOf('temporal-schema');
    expect(script).toContain('temporal-sql-tool');
    expect(script).toContain('--plugin postgres12');
    expect(script).toContain('/etc/temporal/schema/postgresql/v12/temporal/versioned');
    expect(script).toContain('/etc/temporal/schema/postgresql/v12/visibility/versioned');
    for (const db of ['temporal', 'temporal_visibility']) {
      expect(Object.values(services['temporal-schema'].environment ?? {})).toContain(db);
    }
  });

  it('creates the namespace only when missing', () => {
    const script = scriptOf('temporal-namespace');
    expect(script).toContain('operator namespace describe');
    expect(script).toContain('operator namespace create');
    expect(withDefaults(String((services['temporal-namespace'].environment as Record<string, string>).TEMPORAL_NAMESPACE))).toBe('default');
  });

  it('registers the opsflow search attributes as Keyword, ignoring "already exists"', () => {
    const script = scriptOf('temporal-namespace');
    expect(script).toContain('search-attribute create');
    expect(script).toContain('--type Keyword');
    expect(script).toContain('already exists');
    for (const attribute of ['OpsEnvironment', 'OpsService', 'OpsRelease']) {
      expect(script).toMatch(new RegExp(`\\b${attribute}\\b`));
    }
  });

  it('lets the UI take an optional codec endpoint from the environment', () => {
    const env = services['temporal-ui'].environment as Record<string, string>;
    expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(env.TEMPORAL_CODEC_ENDPOINT).toBe('${TEMPORAL_CODEC_ENDPOINT:-}');
  });

  it('runs the server and UI versions scripts/cluster.sh builds and tests', () => {
    const version = (name: string) => new RegExp(`^${name}=(\\S+)$`, 'm').exec(clusterScript)?.[1];
    expect(services.temporal.image).toBe(`temporalio/server:${version('TEMPORAL_SERVER_VERSION')}`);
    expect(services['temporal-ui'].image).toBe(`temporalio/ui:${version('TEMPORAL_UI_VERSION')}`);
  });

  it('runs the server on config/temporal/opsflow.yaml, the config scripts/cluster.sh runs it with', () => {
    const temporal = services.temporal;
    const script = scriptOf('temporal');
    const flag = (name: string) => new RegExp(`--${name} (\\S+)`).exec(script)?.[1] ?? '';
    expect(script).toMatch(/exec temporal-server .* start$/m);
    const loaded = join(flag('root'), flag('config'), `${flag('env')}.yaml`);
    const mount = temporal.configs?.find((c) => c.target === loaded);
    expect(mount, `the server loads ${loaded}, where nothing is mounted`).toBeDefined();
    expect(resolve(__dirname, '..', compose.configs?.[mount!.source]?.file ?? '')).toBe(serverConfigPath);
  });

  it('sets every setting the server config reads, as scripts/cluster.sh does', () => {
    const read = [...readFileSync(serverConfigPath, 'utf8').matchAll(/env "([A-Z_]+)"/g)].map((m) => m[1]);
    const env = services.temporal.environment as Record<string, string>;
    expect(read).toEqual(expect.arrayContaining(['POSTGRES_SEEDS', 'POSTGRES_PWD', 'FRONTEND_GRPC_PORT', 'DYNAMIC_CONFIG_FILE_PATH']));
    for (const name of new Set(read)) {
      expect(clusterScript, `scripts/cluster.sh: ${name}`).toMatch(new RegExp(`\\b${name}=`));
      // The log level keeps its default (info) in the container.
      if (name === 'LOG_LEVEL') continue;
      expect(name in env || scriptOf('temporal').includes(`export ${name}`), `compose: ${name}`).toBe(true);
    }
  });

  it('runs the server with the same dynamic config file as the dev server', () => {
    const temporal = services.temporal;
    const target = (temporal.environment as Record<string, string>).DYNAMIC_CONFIG_FILE_PATH;
    const mount = temporal.configs?.find((c) => c.target === target);
    expect(mount, `nothing mounted at ${target}`).toBeDefined();
    expect(resolve(__dirname, '..', compose.configs?.[mount!.source]?.file ?? '')).toBe(DYNAMIC_CONFIG_FILE);
    // Every unconstrained setting in the file reaches the dev server as a --dynamic-config-value.
    const keys = Object.keys(parse(readFileSync(DYNAMIC_CONFIG_FILE, 'utf8')) as object);
    const passed = dynamicConfigArgs().filter((a) => a !== '--dynamic-config-value').map((a) => a.split('=')[0]);
    expect(passed.sort()).toEqual(keys.sort());
    expect(keys).toEqual(expect.arrayContaining(['history.transferProcessorMaxPollRPS', 'system.enableActivityEagerExecution', 'limit.maxIDLength']));
  });
});
