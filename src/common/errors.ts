// The catalogue of failures opsflow raises on purpose: each type is declared here once, with whether a retry of the
// same activity can fix it. Activities throw these classes; the activity interceptor (src/workers/interceptors.ts)
// turns them into ApplicationFailures of that type, and retry policies take their non-retryable list from here.
// No Node imports: workflow code (and the runbook kernel) reads this module inside the workflow sandbox.
import { ApplicationFailure } from '@temporalio/common';

export interface ErrorOptions {
  /** Structured evidence (check results, row counts) carried in the failure's details; never secrets. */
  details?: unknown[];
}

/** A failure of a known type. `retryable` says whether trying the same activity again can help. */
export abstract class OpsError extends Error {
  abstract readonly type: string;
  abstract readonly retryable: boolean;
  readonly details?: unknown[];

  constructor(message: string, options: ErrorOptions = {}) {
    super(message);
    this.details = options.details;
  }
}

/** Failures of the SSH transport itself (connect, host key, authentication, channel). */
export abstract class SshError extends OpsError {}

export interface ErrorKind {
  readonly type: string;
  readonly retryable: boolean;
  /** No operator retry can fix it either: the runbook ends the run instead of opening a failure gate. */
  readonly fatal: boolean;
}

const kinds: ErrorKind[] = [];

type Kind<B extends abstract new (message: string, options?: ErrorOptions) => OpsError> = (new (message: string, options?: ErrorOptions) => InstanceType<B>) & ErrorKind;

function declare(type: string, retryable: boolean, opts?: { fatal?: boolean }): Kind<typeof OpsError>;
function declare<B extends typeof OpsError>(type: string, retryable: boolean, opts: { fatal?: boolean; base: B }): Kind<B>;
function declare(type: string, retryable: boolean, opts: { fatal?: boolean; base?: typeof OpsError } = {}) {
  const fatal = opts.fatal ?? false;
  const Base = (opts.base ?? OpsError) as unknown as new (message: string, options?: ErrorOptions) => OpsError;
  const Declared = class extends Base {
    static readonly type = type;
    static readonly retryable = retryable;
    static readonly fatal = fatal;
    readonly type = type;
    readonly retryable = retryable;
    override readonly name = type;
  };
  Object.defineProperty(Declared, 'name', { value: type });
  kinds.push(Declared);
  return Declared;
}

// Input and inventory: nothing was changed, nothing will change on retry.
export const InvalidInput = declare('InvalidInput', false, { fatal: true });
export const UnknownTarget = declare('UnknownTarget', false, { fatal: true });
/** The inventory file is missing or invalid: a worker reading it fails the step until the file is fixed. */
export const InvalidInventory = declare('InvalidInventory', false);
export const Misconfigured = declare('Misconfigured', false);
export const ToolConfigError = declare('ToolConfigError', false);
export const ToolMissing = declare('ToolMissing', false);
export const ToolOutputTooLarge = declare('ToolOutputTooLarge', false);
export const PgConfigError = declare('PgConfigError', false);
export const AwsConfigError = declare('AwsConfigError', false);
export const DnsConfigError = declare('DnsConfigError', false);
export const ScheduleNotFound = declare('ScheduleNotFound', false);

// Safety refusals.
export const Embargoed = declare('Embargoed', false, { fatal: true });
export const DestinationIsProduction = declare('DestinationIsProduction', false);
export const RolesConflict = declare('RolesConflict', false);

// SSH.
export const HostKeyRejected = declare('HostKeyRejected', false, { base: SshError });
export const SshAuthFailed = declare('SshAuthFailed', false, { base: SshError });
export const SshConfigError = declare('SshConfigError', false, { base: SshError });
export const SshConnectFailed = declare('SshConnectFailed', true, { base: SshError });
export const SshChannelFailed = declare('SshChannelFailed', true, { base: SshError });
/** A recorded run of a step was made by another host, or by this host in an earlier boot (the run guard). */
export const HostIdentityMismatch = declare('HostIdentityMismatch', false);

// Releases and nodes.
export const ReleaseConflict = declare('ReleaseConflict', false);
export const TagConflict = declare('TagConflict', false);
export const InstallFailed = declare('InstallFailed', true);
export const SmokeTestFailed = declare('SmokeTestFailed', false);
export const RestartFailed = declare('RestartFailed', false);
export const HealthCheckFailed = declare('HealthCheckFailed', false);
export const DrainTimeout = declare('DrainTimeout', true);
export const HaproxyNotUp = declare('HaproxyNotUp', true);
export const HostDidNotReturn = declare('HostDidNotReturn', false);
export const ChecksFailed = declare('ChecksFailed', false);

// DNS: a 4xx answer is final, a 5xx or 429 is worth another try.
export const DnsProviderError = declare('DnsProviderError', false);
export const DnsProviderUnavailable = declare('DnsProviderUnavailable', true);

// Kubernetes.
export const KubernetesRefused = declare('KubernetesRefused', false);
export const KubernetesClientUnavailable = declare('KubernetesClientUnavailable', false);
export const DeploymentPaused = declare('DeploymentPaused', false);
export const DeploymentReplaced = declare('DeploymentReplaced', false);
export const RevisionGone = declare('RevisionGone', false);
export const NotObserved = declare('NotObserved', true);
export const NoRevision = declare('NoRevision', true);
export const Conflict = declare('Conflict', true);

// Data: backups, restores, syncs, migrations.
export const BackupNotFound = declare('BackupNotFound', false);
export const BackupCorrupt = declare('BackupCorrupt', false);
export const VerifyFailed = declare('VerifyFailed', false);
export const RestoreMissing = declare('RestoreMissing', false);
export const RestoreNotVerified = declare('RestoreNotVerified', false);
export const RestoreMismatch = declare('RestoreMismatch', false);
export const DumpCorrupt = declare('DumpCorrupt', false);
export const CopyExists = declare('CopyExists', false);
export const CopyNotReady = declare('CopyNotReady', false);
export const OriginalMissing = declare('OriginalMissing', false);
export const MigrationFailed = declare('MigrationFailed', false);
/** pg_dump/psql failed for a reason a retry will not fix (syntax, permissions, missing objects). */
export const PgError = declare('PgError', false);
/** pg_dump/psql lost its connection, was killed or timed out. */
export const PgUnavailable = declare('PgUnavailable', true);
/** rclone exited with a final code (syntax, fatal, or a transfer limit). */
export const RcloneFailed = declare('RcloneFailed', false);
/** rclone was interrupted or failed with a code a retry can clear. */
export const RcloneInterrupted = declare('RcloneInterrupted', true);

// What a newcomer meets first: each message says what to do next. Built here, once, so that a call site throws
// the catalogue's error with the catalogue's advice instead of phrasing its own.

/** Where an environment can come from when the one asked for is not there. */
const ENVIRONMENT_ADVICE =
  'the built-in inventory (used when there is no inventory file) has the environment `local`, this machine; ' +
  '`opsflow sandbox up` writes sandbox/inventory.yaml with the environment `sandbox`; or write ./inventory.yaml (docs/inventory.md)';

/** An environment the inventory does not declare. `file` is undefined for the built-in inventory. */
export function unknownEnvironment(environment: string, known: string[], file: string | undefined): OpsError {
  const has = `${file ? `the inventory ${file}` : 'the built-in inventory'} has: ${known.length ? known.join(', ') : 'none'}`;
  return new UnknownTarget(`unknown environment "${environment}" (${has}); ${ENVIRONMENT_ADVICE}`);
}

/** An inventory file that was named (--inventory, OPSFLOW_INVENTORY) but is not there. */
export function inventoryFileMissing(file: string, namedBy: string): OpsError {
  return new InvalidInventory(
    `no inventory file at ${file} (named by ${namedBy}): fix the path, or leave ${namedBy} out to use ./inventory.yaml, then sandbox/inventory.yaml ` +
      '(`opsflow sandbox up` writes it), then the built-in inventory (the environment `local`, this machine)',
  );
}

/** Schedules a run needs that were never created. */
export function schedulesNotFound(ids: string[], paused: boolean): OpsError {
  return new ScheduleNotFound(
    `no schedule ${ids.map((id) => `"${id}"`).join(', ')}: a system's schedules exist once \`opsflow schedule apply\` has created them ` +
      `(run it after adding or changing a system in the inventory, or name the run's schedules in its input); nothing was ${paused ? 'paused' : 'resumed'}`,
  );
}

/**
 * No `temporal` CLI anywhere and no Go to build one, and the SDK could not download the dev server either (it needs
 * the internet). `module` is what `go install` would build.
 */
export function temporalCliMissing(module: string, cause: string): OpsError {
  return new ToolMissing(
    'no `temporal` CLI (looked in TEMPORAL_CLI_PATH, PATH and $(go env GOPATH)/bin), no Go to build it, and the download of the dev server failed ' +
      `(${cause}). Install one of them and run npm start again: the Temporal CLI (https://docs.temporal.io/cli#install), on PATH or in TEMPORAL_CLI_PATH; ` +
      `or Go (\`sudo apt-get install golang-go\`, or https://go.dev/dl), and npm start builds the CLI once with \`go install ${module}\`. ` +
      'Or run a Temporal server elsewhere and set TEMPORAL_ADDRESS.',
  );
}

/** Every declared failure type. */
export const ERROR_KINDS: readonly ErrorKind[] = kinds;

/** The non-retryable types of every retry policy (src/workflows/activityOptions.ts's `retry()`). */
export const NON_RETRYABLE_TYPES: string[] = kinds.filter((k) => !k.retryable).map((k) => k.type);

/** Types no operator retry can fix: a runbook step failing with one ends the run instead of opening a failure gate. */
export const FATAL_TYPES: ReadonlySet<string> = new Set(kinds.filter((k) => k.fatal).map((k) => k.type));

export const isFatal = (type: string | undefined | null): boolean => !!type && FATAL_TYPES.has(type);

/**
 * The failure Temporal records for an error an activity threw: a catalogue error becomes an ApplicationFailure of
 * its type with its retryability; anything else is left alone (and so stays retryable).
 */
export function toFailure(err: OpsError): ApplicationFailure;
export function toFailure(err: unknown): unknown;
export function toFailure(err: unknown): unknown {
  if (!(err instanceof OpsError)) return err;
  // The message and details only: what the error wrapped (a client's request, its headers) stays out of history.
  return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: !err.retryable, details: err.details });
}

/** The catalogue error for a type a remote step reported (a host's result), or a plain Error for any other type. */
export function errorOfType(type: string | undefined, message: string): Error {
  const kind = kinds.find((k) => k.type === type) as (ErrorKind & (new (message: string) => OpsError)) | undefined;
  return kind ? new kind(message) : new Error(message);
}
