import { z } from 'zod';
import { approvalGate, argv, duration, fourEyesNeedsRequester, name, runFields, workflowInput } from './common';
import { memcachedCheck } from './rollingUpgrade';

const port = z.number().int().min(1).max(65535);
const hostName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'a host name or IPv4 address');
const unique = (list: string[]) => new Set(list).size === list.length;

/** A new memcached server and what it must show: the runbook's `version`, `stats` (the `-m` limit), a set and get. */
export const newMemcachedServer = memcachedCheck.omit({ kind: true, host: true, port: true }).extend({ host: hostName, port: port.default(11211) });

export const memcachedPoolInput = workflowInput(() =>
  z
    .strictObject({
      environment: name,
      /** The new server(s): checked before anything changes, and again before and after each client. */
      newServers: z.array(newMemcachedServer).min(1),
      /** The whole new pool as the clients' configuration lists it, `host:port`, in order. */
      pool: z
        .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*:\d{1,5}$/, 'host:port, e.g. 10.0.3.10:11211'))
        .min(1)
        .refine(unique, 'a server appears twice'),
      /** Hosts running the pool's client services (Open Library, Infobase), switched one at a time in this order. */
      clients: z.array(name).min(1).refine(unique, 'a host appears twice'),
      /** The pool configuration file on each client, written atomically; `{servers}` in `content` is the pool as a JSON array. */
      config: z.strictObject({
        // Relative: to where a command on the client starts, as `scp client:path` reads it. No leading `-` (the
        // write's tools would take it for an option) and no `~` (quoted, it is never expanded).
        path: z
          .string()
          .regex(
            /^(?![-~])[^\u0000]+$/,
            "an absolute path, or one relative to the client's login directory (the SSH user's home; the worker user's for a local host), not starting with - or ~; {name} is the client's inventory var, e.g. {app}/memcache.yml",
          ),
        content: z.string().refine((c) => c.includes('{servers}'), 'must contain {servers}, where the pool goes'),
      }),
      /** Restarts the client services so they load the new pool. */
      restart: argv,
      /** The file is written and the restart run under sudo -n. */
      sudo: z.boolean().default(true),
      /** The application's own check on each client after its restart: a write and a read through it, exit 0. */
      verify: argv,
      /** How long a client may take to pass its checks after the restart. */
      checksTimeout: duration.default('2m'),
      /** How to go back (the previous file is kept as <path>.opsflow-previous), for the approvers. */
      rollbackPlan: z.string().trim().min(1, 'required: say how to roll back before anything starts'),
      approval: approvalGate.default({ quorum: 1, fourEyes: false, timeout: '24h' }),
      ...runFields,
    })
    .superRefine((input, ctx) => {
      fourEyesNeedsRequester(input, [input.approval], ctx);
      input.newServers.forEach((s, i) => {
        if (!input.pool.includes(`${s.host}:${s.port}`)) ctx.addIssue({ code: 'custom', path: ['newServers', i], message: `${s.host}:${s.port} is not in the pool` });
      });
    }),
);

export type MemcachedPoolInput = z.input<typeof memcachedPoolInput>;
