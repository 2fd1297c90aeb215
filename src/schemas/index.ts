// Every workflow opsflow offers, with its input schema and a ready-to-paste example. The CLI's `schema`,
// `example` and `start` read this; the README's examples are tested against it.
import type { z } from 'zod';
import blueGreenDeployExample from '../../examples/blueGreenDeploy.json';
import fleetRunExample from '../../examples/fleetRun.json';
import rollbackReleaseExample from '../../examples/rollbackRelease.json';
import rollingUpgradeExample from '../../examples/rollingUpgrade.json';
import { fleetRunInput } from './fleetRun';
import { blueGreenDeployInput, rollbackReleaseInput } from './release';
import { rollingUpgradeInput } from './rollingUpgrade';

export interface WorkflowEntry {
  description: string;
  input: z.ZodType;
  example: Record<string, unknown>;
  /** One line for the Temporal UI's run list. */
  summary(input: Record<string, unknown>): string;
  labels(input: Record<string, unknown>): { environment?: string; service?: string; release?: string };
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

export const WORKFLOWS: Record<string, WorkflowEntry> = {
  fleetRun: {
    description: 'run one command on every host of a group, with concurrency, an error budget and optional approval',
    input: fleetRunInput,
    example: fleetRunExample,
    summary: (i) => `fleetRun ${str(i.environment) ?? '?'}: ${Array.isArray(i.command) ? i.command.join(' ').slice(0, 80) : '?'}`,
    labels: (i) => ({ environment: str(i.environment), service: str(i.service) }),
  },
  blueGreenDeploy: {
    description: 'zero-downtime release to the nodes of a service behind HAProxy, blue node first, with rollback',
    input: blueGreenDeployInput,
    example: blueGreenDeployExample,
    summary: (i) => `deploy ${str(i.service) ?? '?'} ${str((i.release as { id?: unknown } | undefined)?.id) ?? '?'} to ${str(i.environment) ?? '?'}`,
    labels: (i) => ({ environment: str(i.environment), service: str(i.service), release: str((i.release as { id?: unknown } | undefined)?.id) }),
  },
  rollbackRelease: {
    description: "put a service's nodes back on an earlier release (default: each node's previous one)",
    input: rollbackReleaseInput,
    example: rollbackReleaseExample,
    summary: (i) => `roll back ${str(i.service) ?? '?'} in ${str(i.environment) ?? '?'}${str(i.to) ? ` to ${str(i.to)}` : ''}`,
    labels: (i) => ({ environment: str(i.environment), service: str(i.service), release: str(i.to) }),
  },
  rollingUpgrade: {
    description: 'upgrade hosts one at a time in a fixed order, rebooting and checking each, stopping at the first that fails',
    input: rollingUpgradeInput,
    example: rollingUpgradeExample,
    summary: (i) => `rolling upgrade in ${str(i.environment) ?? '?'}: ${Array.isArray(i.order) ? i.order.join(', ').slice(0, 80) : '?'}`,
    labels: (i) => ({ environment: str(i.environment) }),
  },
};

export function workflowEntry(name: string): WorkflowEntry {
  const entry = WORKFLOWS[name];
  if (!entry) throw new Error(`unknown workflow "${name}" (known: ${Object.keys(WORKFLOWS).join(', ')})`);
  return entry;
}
