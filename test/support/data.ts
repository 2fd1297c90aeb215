// Shared by the data sync tests and the bench: an inventory with the data sections (aws, databases, systems)
// on top of the test fleet's, directory trees of many small files and a few large ones, and tree digests.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { fleet, ROOT, writeInventory, type InventoryOptions } from './harness';

/** An artifacts directory for one test or bench run (git-ignored). */
export function artifactsDir(name: string): string {
  const dir = path.join(ROOT, 'test/artifacts', `${name}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The fleet inventory plus `aws`, `databases` and `systems` sections. */
export function writeDataInventory(data: { aws?: unknown; databases?: unknown; systems?: unknown }, opts: InventoryOptions = {}): string {
  const file = writeInventory(opts);
  const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, stringify({ ...doc, ...data }));
  return file;
}

/** An rclone config with one SFTP remote, `fleet`, on fleet host h2; without `knownHosts` it would accept any key. */
export function sftpConfig(file: string, knownHosts?: string): string {
  const h2 = fleet().hosts[1];
  writeFileSync(
    file,
    [
      '[fleet]',
      'type = sftp',
      `host = ${h2.address}`,
      `port = ${h2.port}`,
      `user = ${fleet().user}`,
      `key_file = ${fleet().identityFile}`,
      ...(knownHosts ? [`known_hosts_file = ${knownHosts}`] : []),
      'shell_type = unix',
      'md5sum_command = md5sum',
      'sha1sum_command = sha1sum',
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * `small` files of a few hundred bytes to a few KiB in 30 directories, and `large` files of `largeMb` MiB. Contents
 * are pseudo-random (incompressible, as user uploads are) and reproducible from `seed`.
 */
export function makeTree(dir: string, opts: { small: number; large: number; largeMb: number; seed?: string }): void {
  const seed = opts.seed ?? 'opsflow';
  const bytes = (label: string, n: number) => {
    const out = Buffer.alloc(n);
    let block = createHash('sha256').update(`${seed}:${label}`).digest();
    for (let off = 0; off < n; off += block.length) {
      block.copy(out, off);
      block = createHash('sha256').update(block).digest();
    }
    return out;
  };
  for (let i = 0; i < opts.small; i++) {
    const sub = path.join(dir, `user${i % 30}`, `upload${i % 7}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `file${i}.dat`), bytes(`s${i}`, 200 + ((i * 997) % 4000)));
  }
  mkdirSync(path.join(dir, 'large'), { recursive: true });
  // The large files repeat one random MiB: writing them stays cheap, and rclone still moves every byte.
  const mib = bytes('large', 1024 * 1024);
  for (let i = 0; i < opts.large; i++) {
    const header = Buffer.from(`large ${i}\n`);
    const parts = Array.from({ length: opts.largeMb }, (_, k) => (k === 0 ? Buffer.concat([header, mib.subarray(header.length)]) : mib));
    writeFileSync(path.join(dir, 'large', `big${i}.bin`), Buffer.concat(parts));
  }
}

/** Every file's relative path and sha256, sorted: two trees are identical when their digests are. */
export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(path.relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  if (statSync(dir, { throwIfNoEntry: false })) walk(dir);
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}
