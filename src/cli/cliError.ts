/** An error the CLI reports without a stack. Exit codes: 1 the operation failed or was refused, 2 the command line or input was wrong. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
