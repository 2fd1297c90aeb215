// Finds nodes of one service whose release roots are one directory (an NFS export mounted on several nodes, a
// copy-pasted path onto shared storage). Switching the live release on one of them would switch it on the others
// too, so such a service is refused before anything changes. The paths alone cannot tell: /srv/app is a different
// directory on every host unless it is not. So every node leaves a marker in its root, then each looks for the
// markers of the others.
import { randomBytes } from 'node:crypto';
import type { PlainResult } from './ssh/remoteRun';

// $1 root, $2 marker prefix, $3 node. The root may not exist yet (first deploy): the nearest existing directory
// above it is what the node would create it in, so that is where the marker goes. Prints the directory used.
const MARK = `d=$1; while [ ! -d "$d" ]; do d=\${d%/*}; d=\${d:-/}; done
: >"$d/$2$3" 2>/dev/null && printf '%s\\n' "$d"; exit 0`;

// $1 directory, $2 marker prefix, $3 node: names the nodes whose markers are there, then removes its own. The
// first node to look sees every marker, as none is removed before its owner has looked.
const LOOK = `d=$1 p=$2 me=$3
for f in "$d/$p"*; do n=\${f#"$d/$p"}; [ -e "$f" ] && [ "$n" != "$me" ] && printf '%s\\n' "$n"; done
rm -f -- "$d/$p$me"; exit 0`;

export interface SharedRoot {
  nodes: [string, string];
  /** The directory as the first of the two nodes sees it. */
  dir: string;
}

/** Pairs of nodes that see one another's marker; empty when every root is the node's own. */
export async function findSharedRoots(nodes: { name: string; root: string }[], sh: (node: string, argv: string[]) => Promise<PlainResult>): Promise<SharedRoot[]> {
  if (nodes.length < 2) return [];
  const prefix = `.opsflow-root-check.${randomBytes(6).toString('hex')}.`;
  const dirs = await Promise.all(nodes.map(async (n) => (await sh(n.name, ['sh', '-c', MARK, 'opsflow', n.root, prefix, n.name])).stdout.trim()));
  const seen = await Promise.all(
    nodes.map(async (n, i) => (dirs[i] ? (await sh(n.name, ['sh', '-c', LOOK, 'opsflow', dirs[i], prefix, n.name])).stdout.split('\n').filter(Boolean) : [])),
  );
  // Two roots that do not exist yet share only if they would be created as one directory: the same path below
  // the directory both see.
  const below = nodes.map((n, i) => n.root.slice(dirs[i].length).replace(/^\/+|\/+$/g, ''));
  const pairs = new Map<string, SharedRoot>();
  nodes.forEach((n, i) => {
    for (const other of seen[i]) {
      const j = nodes.findIndex((x) => x.name === other);
      if (j < 0 || below[j] !== below[i]) continue;
      const pair = [n.name, other].sort() as [string, string];
      pairs.set(pair.join('\0'), pairs.get(pair.join('\0')) ?? { nodes: pair, dir: dirs[i] });
    }
  });
  return [...pairs.values()];
}
