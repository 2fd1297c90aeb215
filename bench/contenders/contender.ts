import type { FleetHost } from '../../test/support/fleet';

/** One way of running a command on many hosts. `run` resolves when every host ran it, and throws otherwise. */
export interface Contender {
  name: string;
  run(hosts: FleetHost[], command: string[]): Promise<void>;
  /** Between measurements: drop whatever the contender keeps open, so every measurement starts cold. */
  reset?(): Promise<void>;
  close?(): Promise<void>;
}

/** Concurrency every contender gets: 50 hosts at a time. */
export const FANOUT = 50;

/** What a contender's process printed, for the error when it failed. */
export function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}
