// The README and docs/ are the contract: their examples must be the real ones, and valid, and their links must
// lead somewhere.
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../src/config/inventory';
import { sandboxExamples } from '../src/sandbox/inputs';
import { WORKFLOWS } from '../src/schemas/index';

const root = path.join(__dirname, '..');

function markdownUnder(dir: string): string[] {
  return readdirSync(path.join(root, dir)).flatMap((entry) => {
    const rel = path.join(dir, entry);
    if (statSync(path.join(root, rel)).isDirectory()) return markdownUnder(rel);
    return entry.endsWith('.md') ? [rel] : [];
  });
}

/** README.md and every page of docs/, by path relative to the repository. */
const pages = new Map(['README.md', ...markdownUnder('docs')].map((file) => [file, readFileSync(path.join(root, file), 'utf8')]));

/** The json (or yaml) block right after each `<!-- kind:name -->` marker of the pages. */
function marked(kind: string, lang = 'json'): { file: string; name: string; block: string | undefined }[] {
  return [...pages].flatMap(([file, text]) =>
    [...text.matchAll(new RegExp(`<!-- ${kind}:([\\w-]+) -->\\n([\\s\\S]*?)(?=<!--|$)`, 'g'))].map((m) => ({
      file,
      name: m[1],
      block: m[2].match(new RegExp('^```' + lang + '\\n([\\s\\S]*?)```'))?.[1],
    })),
  );
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const heading of text.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.*)$/gm)) {
    const slug = heading[1].trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

describe('README and docs/', () => {
  for (const [name, entry] of Object.entries(WORKFLOWS)) {
    it(`documents ${name} on its own page with its real, valid example input`, () => {
      const file = `docs/workflows/${name}.md`;
      expect(pages.get(file), `${file} is missing`).toMatch(new RegExp(`^# \`${name}\``));
      const examples = marked('example').filter((e) => e.name === name);
      expect(examples.map((e) => e.file)).toContain(file);
      for (const { file: where, block } of examples) {
        expect(block, `${where} needs a json block after <!-- example:${name} -->`).toBeDefined();
        expect(JSON.parse(block as string)).toEqual(entry.example);
      }
      expect(entry.input.safeParse(entry.example).success).toBe(true);
    });
  }

  it('ships the inputs `opsflow sandbox up` writes, each valid for its workflow', () => {
    const dir = path.join(root, 'examples/sandbox');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(Object.fromEntries(files.map((f) => [f, JSON.parse(readFileSync(path.join(dir, f), 'utf8'))]))).toEqual(sandboxExamples());
    for (const file of files) {
      const workflow = file.split('.')[0];
      const parsed = WORKFLOWS[workflow as keyof typeof WORKFLOWS]?.input.safeParse(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
      expect(parsed?.success, `examples/sandbox/${file}: ${parsed?.error?.message ?? `unknown workflow ${workflow}`}`).toBe(true);
    }
  });

  it('marks only examples of workflows that exist', () => {
    expect(marked('example').map((e) => e.name).filter((name) => !(name in WORKFLOWS))).toEqual([]);
  });

  it('shows other inputs that validate against their workflow schema', () => {
    const inputs = marked('input');
    expect(inputs.length).toBeGreaterThan(0);
    for (const { file, name, block } of inputs) {
      expect(block, `${file} needs a json block after <!-- input:${name} -->`).toBeDefined();
      const parsed = WORKFLOWS[name as keyof typeof WORKFLOWS]?.input.safeParse(JSON.parse(block as string));
      expect(parsed?.success, `${file}: input for ${name}: ${parsed?.error?.message ?? 'unknown workflow'}`).toBe(true);
    }
  });

  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const [file, text] of pages) {
      const prose = text.replace(/^```[\s\S]*?^```/gm, '');
      for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [ref, anchor] = target.split('#');
        const dest = ref ? path.normalize(path.join(path.dirname(file), ref)) : file;
        if (!existsSync(path.join(root, dest))) broken.push(`${file}: ${target} (no ${dest})`);
        else if (anchor && !anchors(pages.get(dest) ?? readFileSync(path.join(root, dest), 'utf8')).has(anchor)) broken.push(`${file}: ${target} (no heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("links every page of docs/ from the README's map or another page", () => {
    const linked = new Set(
      [...pages].flatMap(([file, text]) =>
        [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => path.normalize(path.join(path.dirname(file), m[1]))),
      ),
    );
    expect([...pages.keys()].filter((file) => file !== 'README.md' && !linked.has(file))).toEqual([]);
  });

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

  it("shows a first-run inventory that loads, with the README's fleetRun target", () => {
    const [first] = marked('inventory', 'yaml').filter((e) => e.name === 'first-run');
    expect(first?.block, 'README needs a yaml block after <!-- inventory:first-run -->').toBeDefined();
    const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-first-run-'));
    writeFileSync(path.join(dir, 'inventory.yaml'), first.block as string);
    writeFileSync(path.join(dir, 'known_hosts'), '');
    const inventory = loadInventory(path.join(dir, 'inventory.yaml'));
    expect(inventory.resolve('mine', { group: 'all' }).map((h) => h.name)).toEqual(['self']);
    expect(inventory.connection('mine', 'self')).toMatchObject({ address: '127.0.0.1', port: 22 });
  });
});
