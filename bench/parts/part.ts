import type { Machine } from '../lib/machine';
import type { Figure, Tool } from '../lib/report';

export interface PartContext {
  /** Smaller sizes and fewer rounds, for a quick look rather than figures to quote. */
  quick: boolean;
  machine: Machine;
}

export interface PartOutput {
  figures: Figure[];
  notes: string[];
}

export interface Part {
  name: string;
  /** One line for `npm run bench -- --help`. */
  describe: string;
  /** Named with their versions above the part's table. */
  tools: Tool[];
  run(ctx: PartContext): Promise<PartOutput>;
}
