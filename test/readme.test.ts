// The README is the contract: its examples must be the real ones, and valid.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../src/config/inventory';
import { WORKFLOWS } from '../src/schemas/index';

const root = path.join(__dirname, '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

describe('README', () => {
  for (const [name, entry] of Object.entries(WORKFLOWS)) {
    it(`documents ${name} with its real, valid example input`, () => {
      expect(readme).toContain(`### \`${name}\``);
      const block = readme.split(`<!-- example:${name} -->`)[1]?.match(/```json\n([\s\S]*?)```/)?.[1];
      expect(block, `README needs a json block after <!-- example:${name} -->`).toBeDefined();
      expect(JSON.parse(block as string)).toEqual(entry.example);
      expect(entry.input.safeParse(entry.example).success).toBe(true);
    });
  }

  it('shows an example inventory that loads', () => {
    const inventory = loadInventory(path.join(root, 'examples/inventory.yaml'));
    expect(inventory.resolve('production', { group: 'web' }).map((h) => h.name)).toEqual(['web3', 'web4']);
    expect(inventory.connection('production', 'web3').jumps.map((j) => j.name)).toEqual(['bastion']);
    expect(inventory.connection('production', 'bastion').jumps).toEqual([]);
    expect(inventory.gateSigners('production').signed).toBe('required');
    expect(inventory.gateSigners('staging').signed).toBe('optional');
    expect(inventory.gateSigners().signed).toBe('optional');
    expect(inventory.gateSigners('production').people.alice.keys).toHaveLength(1);
  });
});
