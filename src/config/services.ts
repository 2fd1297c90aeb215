// Services in the inventory: which hosts run a service, how releases are laid out and switched on them, how
// their health is checked, and where HAProxy balances them. Strings may name per-host values as {placeholders}
// (the host's `vars`, plus node, address, root and live); they are filled in on the worker, each as a whole
// argument, never through a shell.
import { z } from 'zod';
import { argv, duration, name } from '../schemas/common';

export const serviceSchema = z.strictObject({
  /** Hosts running the service, in deploy order after the blue one. */
  nodes: z.array(name).min(1),
  /** Deployed and restarted first, and checked before the others are touched. */
  blue: name,
  /** Green nodes switched at a time. */
  batchSize: z.number().int().min(1).default(1),
  release: z.strictObject({
    /** Where release directories live, one per release id: e.g. /opt/app/deploys. */
    root: z.string().min(1),
    /** The symlink that points at the live release: e.g. /opt/app/current. */
    live: z.string().min(1),
    restart: argv,
    /** Run inside a new release directory before it counts as installed (dependencies, assets). */
    build: argv.optional(),
    /** Run inside the new release directory on the blue node before any switch; must exit 0. */
    smoke: argv.optional(),
    /** Releases kept per node; the live and the previous one are always kept. */
    keep: z.number().int().min(2).default(5),
    sudo: z.boolean().default(false),
  }),
  health: z.strictObject({
    /** Checked from the worker, e.g. http://{address}:8080/health. */
    url: z.string().min(1),
    status: z.number().int().default(200),
    /** A text the response body must contain. */
    body: z.string().optional(),
    timeout: duration.default('60s'),
  }),
  haproxy: z
    .strictObject({
      backend: z.string().min(1),
      /** HAProxy server name per node; a node not listed uses its own name. */
      servers: z.record(name, z.string().min(1)).default({}),
      /** The runtime API (stats) socket, with `level admin`. */
      socket: z.string().min(1),
      /** The host running HAProxy, reached over SSH (it needs socat); absent: the worker's own machine. */
      via: name.optional(),
      drainTimeout: duration.default('60s'),
    })
    .optional(),
});

export type ServiceConfig = z.output<typeof serviceSchema>;

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Fills {name} from `vars`; an unknown name is an error, so a typo cannot reach a host as literal text. */
export function expand(template: string, vars: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (_, key: string) => {
    if (!(key in vars)) throw new Error(`unknown placeholder {${key}} (known: ${Object.keys(vars).map((k) => `{${k}}`).join(', ')})`);
    return vars[key];
  });
}

/**
 * Fills the {name}s that `vars` knows and leaves every other brace alone: a command's own text (a shell
 * script's `${VAR}` or awk's `{print}`) passes through unchanged.
 */
export function fillKnown(template: string, vars: Record<string, string>): string {
  return template.replace(/(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, key: string) => (Object.hasOwn(vars, key) ? vars[key] : whole));
}

/** A service as one node runs it, every placeholder filled. */
export interface NodeService {
  node: string;
  address: string;
  root: string;
  live: string;
  restart: string[];
  build?: string[];
  smoke?: string[];
  sudo: boolean;
  keep: number;
  healthUrl: string;
}

export function nodeService(service: ServiceConfig, node: string, address: string, hostVars: Record<string, string>): NodeService {
  const base = { ...hostVars, node, address };
  const root = expand(service.release.root, base);
  const live = expand(service.release.live, base);
  const vars = { ...base, root, live };
  const all = (a: string[] | undefined) => a?.map((x) => expand(x, vars));
  return {
    node,
    address,
    root,
    live,
    restart: all(service.release.restart) as string[],
    build: all(service.release.build),
    smoke: all(service.release.smoke),
    sudo: service.release.sudo,
    keep: service.release.keep,
    healthUrl: expand(service.health.url, vars),
  };
}
