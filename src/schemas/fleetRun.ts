import { z } from 'zod';
import { approvalGate, argv, duration, envVars, fourEyesNeedsRequester, name, runFields, target, workflowInput } from './common';

export const fleetRunInput = workflowInput(() =>
  z
    .strictObject({
      environment: name,
      target,
      /** Program and arguments; each element is one argument on the host, never parsed by a shell. */
      command: argv,
      sudo: z.boolean().default(false),
      cwd: z.string().min(1).optional(),
      /** Plain environment for the command. Not for secrets: the input is kept in the run's history. */
      env: envVars.optional(),
      /** Per host; the remote process is killed when it is exceeded. */
      timeout: duration.default('10m'),
      concurrency: z.number().int().min(1).max(200).default(10),
      /** Errors tolerated before no new host is started: a count, or a percentage of the targets ("10%"). */
      maxErrors: z
        .union([z.number().int().min(0), z.string().regex(/^(100|[1-9]?\d)%$/, 'a percentage from 0% to 100%')])
        .default(0),
      /** Wait for approval before anything runs. */
      approval: approvalGate.optional(),
      /** Labels for finding the run in the UI; also set as search attributes. */
      service: name.optional(),
      ...runFields,
    })
    .superRefine((input, ctx) => fourEyesNeedsRequester(input, [input.approval], ctx)),
);

export type FleetRunInput = z.input<typeof fleetRunInput>;
export type FleetRunParsed = z.output<typeof fleetRunInput>;

/** Errors allowed out of `targets` hosts, as SSM rate control counts them (a percentage rounds down). */
export function errorBudget(maxErrors: number | string, targets: number): number {
  return typeof maxErrors === 'number' ? maxErrors : Math.floor((Number.parseInt(maxErrors, 10) * targets) / 100);
}
