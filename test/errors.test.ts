// The error catalogue and the activity interceptor that turns its errors into Temporal failures.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import * as catalogue from '../src/common/errors';
import { ERROR_KINDS, FATAL_TYPES, HostKeyRejected, InstallFailed, isFatal, NON_RETRYABLE_TYPES, OpsError, SshError, UnknownTarget } from '../src/common/errors';
import { UnknownTargetError } from '../src/config/inventory';
import { errorInterceptor } from '../src/workers/interceptors';
import { ROOT } from './support/harness';

type Kind = (new (message: string, options?: catalogue.ErrorOptions) => OpsError) & catalogue.ErrorKind;

/** What the interceptor lets out of an activity that throws `err`. */
async function thrownThrough(err: unknown): Promise<unknown> {
  const { inbound } = errorInterceptor({} as never) as { inbound: Required<ActivityInboundCallsInterceptor> };
  return inbound.execute({ args: [], headers: {} } as ActivityExecuteInput, async () => {
    throw err;
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('the error catalogue', () => {
  it('declares each type once, as a class named for its type', () => {
    const types = ERROR_KINDS.map((k) => k.type);
    expect(new Set(types).size).toBe(types.length);
    for (const k of ERROR_KINDS) expect((catalogue as unknown as Record<string, unknown>)[k.type]).toBe(k);
    expect(types).toEqual(expect.arrayContaining(['InvalidInput', 'UnknownTarget', 'HostKeyRejected', 'SshAuthFailed', 'SshConfigError', 'Embargoed', 'HealthCheckFailed', 'ChecksFailed', 'RolesConflict', 'DnsProviderError', 'KubernetesRefused']));
  });

  it('derives the non-retryable list and the fatal set from the classes', () => {
    expect(NON_RETRYABLE_TYPES).toEqual(ERROR_KINDS.filter((k) => !k.retryable).map((k) => k.type));
    expect(NON_RETRYABLE_TYPES).toContain('HostKeyRejected');
    expect(NON_RETRYABLE_TYPES).not.toContain('SshConnectFailed');
    expect([...FATAL_TYPES].sort()).toEqual(['Embargoed', 'InvalidInput', 'UnknownTarget']);
    expect(isFatal('UnknownTarget')).toBe(true);
    expect(isFatal('HostKeyRejected')).toBe(false);
    expect(isFatal(undefined)).toBe(false);
  });

  it('makes the SSH transport errors SshErrors, and the inventory\'s unknown target the catalogue\'s', () => {
    expect(new HostKeyRejected('x')).toBeInstanceOf(SshError);
    expect(new InstallFailed('x')).not.toBeInstanceOf(SshError);
    expect(new UnknownTargetError('x')).toBeInstanceOf(UnknownTarget);
  });

  it('is the only place that lists non-retryable types', () => {
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
    const listing = files(path.join(ROOT, 'src')).filter((f) => readFileSync(f, 'utf8').includes('nonRetryableErrorTypes'));
    expect(listing.map((f) => path.relative(ROOT, f))).toEqual(['src/workflows/activityOptions.ts']);
  });
});

describe('the activity error interceptor', () => {
  it.each(ERROR_KINDS.map((k) => [k.type, k] as const))('turns %s into a failure of that type and retryability, with its message', async (type, kind) => {
    const failure = await thrownThrough(new (kind as Kind)(`the ${type} message`, { details: [{ evidence: 1 }] }));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type, nonRetryable: !kind.retryable, message: `the ${type} message`, details: [{ evidence: 1 }] });
  });

  it('leaves an unknown error as it is, so it stays retryable', async () => {
    const err = new Error('socket hang up');
    expect(await thrownThrough(err)).toBe(err);
    const failure = ApplicationFailure.create({ message: 'already a failure', type: 'Custom', nonRetryable: false });
    expect(await thrownThrough(failure)).toBe(failure);
  });
});
