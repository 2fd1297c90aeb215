import { ApplicationFailure } from '@temporalio/common';

/** Failure types a retry cannot fix; workflows list them as non-retryable. */
export const SSH_FATAL = {
  hostKey: 'HostKeyRejected',
  auth: 'SshAuthFailed',
  config: 'SshConfigError',
} as const;

export class SshError extends Error {
  constructor(message: string, readonly type: string, readonly retryable: boolean) {
    super(message);
    this.name = 'SshError';
  }

  toFailure(): ApplicationFailure {
    return ApplicationFailure.create({ message: this.message, type: this.type, nonRetryable: !this.retryable });
  }
}
