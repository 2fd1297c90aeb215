import { z } from 'zod';
import { approvalGate, argv, duration, fourEyesNeedsRequester, name, runFields, workflowInput } from './common';

const dottedVersion = z.string().regex(/^\d+(\.\d+)*$/, 'a version such as 1.6 or 1.6.18');

/** The runbook's memcached checks: `version`, `stats` showing the `-m` limit, a real set and get. */
export const memcachedCheck = z.strictObject({
  kind: z.literal('memcached'),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).default(11211),
  version: z.strictObject({ equals: dottedVersion.optional(), atLeast: dottedVersion.optional() }).optional(),
  /** The `-m` setting: `stats` must report this limit. */
  memoryLimitMb: z.number().int().min(1).optional(),
  /** Store a key and read it back. */
  setGet: z.boolean().default(true),
});

/** A check of a host's health, before and after its upgrade. {address} and {node} name the host. */
export const serviceCheck = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('http'), url: z.string().min(1), status: z.number().int().default(200), body: z.string().optional() }),
  z.strictObject({ kind: z.literal('tcp'), port: z.number().int().min(1).max(65535), host: z.string().min(1).optional() }),
  z.strictObject({ kind: z.literal('command'), command: argv, sudo: z.boolean().default(false) }),
  memcachedCheck,
]);
export type ServiceCheck = z.output<typeof serviceCheck>;

export const rollingUpgradeInput = workflowInput(() =>
  z
    .strictObject({
      environment: name,
      /** Hosts in the order to upgrade them, e.g. dev, web1, web2, solr1, solr2, covers, home, www. */
      order: z.array(name).min(1).refine((o) => new Set(o).size === o.length, 'a host appears twice'),
      /** Hosts upgraded at the same time; 1 (the default) is strictly one at a time. */
      waveSize: z.number().int().min(1).default(1),
      /** How to undo this if it goes wrong, for the approvers to read before they say yes. */
      rollbackPlan: z.string().trim().min(1, 'required: say how to roll back before anything starts'),
      upgrade: z.strictObject({ command: argv, sudo: z.boolean().default(true), timeout: duration.default('30m') }),
      /** Packages whose versions are recorded before and after (dpkg). */
      packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'a Debian package name')).default([]),
      /** Text /etc/os-release must contain before the upgrade, e.g. "bookworm". */
      expectOs: z.string().min(1).optional(),
      reboot: z
        .strictObject({
          command: argv.default(['systemctl', 'reboot']),
          sudo: z.boolean().default(true),
          /** Prints an id that changes at every boot; by default the host's bootIdFile from the inventory. */
          bootIdCommand: argv.default(['cat', '{bootIdFile}']),
          /** How long the host may take to come back over SSH. */
          timeout: duration.default('10m'),
        })
        .optional(),
      checks: z.array(serviceCheck).default([]),
      /** How long post-checks may take to pass after the upgrade. */
      checksTimeout: duration.default('2m'),
      /** The thumbs-up from staff; there is always one. */
      approval: approvalGate.default({ quorum: 1, fourEyes: false, timeout: '24h' }),
      ...runFields,
    })
    .superRefine((input, ctx) => fourEyesNeedsRequester(input, [input.approval], ctx)),
);

export type RollingUpgradeInput = z.input<typeof rollingUpgradeInput>;
export type RollingUpgradeParsed = z.output<typeof rollingUpgradeInput>;
