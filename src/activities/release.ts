// Activities for versioned releases on service nodes: install into releases/<id>, switch the live symlink
// atomically, restart, check health, take nodes out of and back into HAProxy rotation, prune, tag.
// Each one is check-then-act, so a retry after a crash finds the work done and does nothing twice.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import { programArgv } from '../common/command';
import { quoteArgv } from '../common/shell';
import type { Inventory, ResolvedHost } from '../config/inventory';
import type { NodeService } from '../config/services';
import { serverStat, setServerState, type HaproxyEndpoint } from './haproxy';
import type { SshPool } from './ssh/pool';
import { findSharedRoots } from './sharedRoots';
import { runPlain, type PlainResult } from './ssh/remoteRun';
import { DrainTimeout, HaproxyNotUp, HealthCheckFailed, InstallFailed, Misconfigured, ReleaseConflict, RestartFailed, SmokeTestFailed, TagConflict } from '../common/errors';

const run = promisify(execFile);

export interface ReleaseSource {
  /** Release id: the directory name under the releases root (a commit hash or a version). */
  id: string;
  git?: { repo: string; ref: string };
  /** A .tar.gz on the node, or an http(s) URL the node fetches. */
  tarball?: string;
}

export interface ServicePlan {
  environment: string;
  service: string;
  blue: string;
  batchSize: number;
  nodes: (ResolvedHost & { root: string; live: string; restart: string; healthUrl: string; build?: string; smoke?: string; haproxyServer?: string })[];
  haproxy?: { backend: string; socket: string; via?: string };
  keep: number;
  /** The longest wait a node step declares (health check, HAProxy drain or UP): the base of its allowance. */
  waitMs: number;
}

export interface NodeRef {
  environment: string;
  service: string;
  node: string;
}

export interface HealthResult {
  node: string;
  url: string;
  status: number;
  body: string;
  attempts: number;
  ms: number;
}

// $1 root, $2 id, $3 kind (git|tarball), $4 source, $5 ref, then the build argv (may be empty).
export const INSTALL = `root=$1 id=$2 kind=$3 src=$4 ref=$5; shift 5
d="$root/$id"
if [ -e "$d/.opsflow-release" ]; then echo reused; exit 0; fi
if [ -e "$d" ]; then echo "$d exists but is not a complete opsflow release: move it away" >&2; exit 3; fi
mkdir -p "$root" && t=$(mktemp -d "$root/.opsflow-$id.XXXXXX") || exit 1
done=
trap '[ -n "$done" ] || rm -rf "$t"' EXIT
case $kind in
  git) git clone -q -- "$src" "$t" && git -C "$t" -c advice.detachedHead=false checkout -q --detach "$ref" || exit 4 ;;
  tarball) case $src in
      http://*|https://*) curl -fsSL -- "$src" | tar -xzf - -C "$t" || exit 4 ;;
      *) tar -xzf "$src" -C "$t" || exit 4 ;;
    esac ;;
esac
if [ $# -gt 0 ]; then (cd "$t" && "$@") || { echo "build failed" >&2; exit 5; }; fi
echo "$id" >"$t/.opsflow-release" && chmod 755 "$t" && mv -T "$t" "$d" && done=1 && echo installed`;

// $1 live symlink, $2 target release directory.
export const SWITCH = `live=$1 target=$2
cur=$(readlink -- "$live" 2>/dev/null) || cur=
if [ "$cur" = "$target" ]; then echo "unchanged $cur"; exit 0; fi
[ -e "$target/.opsflow-release" ] || { echo "$target is not an installed release" >&2; exit 3; }
tmp="$live.opsflow-$$"
ln -s -- "$target" "$tmp" && mv -T -- "$tmp" "$live" && echo "switched $cur"`;

export function createReleaseActivities(deps: { inventory: Inventory; ssh: SshPool }) {
  const { inventory, ssh } = deps;

  function nodeOf(ref: NodeRef): { svc: NodeService; conn: ReturnType<Inventory['connection']> } {
    return { svc: inventory.nodeService(ref.environment, ref.service, ref.node), conn: inventory.connection(ref.environment, ref.node) };
  }

  async function sh(ref: NodeRef, argv: string[], timeoutMs = 120_000): Promise<PlainResult> {
    const { conn } = nodeOf(ref);
    return ssh.shell(conn, (shell) => runPlain(shell, argv, timeoutMs));
  }

  function haproxyOf(ref: NodeRef): { at: HaproxyEndpoint; backend: string; server: string; drainMs: number } | undefined {
    const cfg = inventory.service(ref.environment, ref.service).haproxy;
    if (!cfg) return undefined;
    return {
      at: { socket: cfg.socket, via: cfg.via ? inventory.connection(ref.environment, cfg.via) : undefined },
      backend: cfg.backend,
      server: cfg.servers[ref.node] ?? ref.node,
      drainMs: msToNumber(cfg.drainTimeout as Duration),
    };
  }

  /** Polls until `done` says so, heartbeating, or throws `onTimeout` after `timeoutMs`. */
  async function poll<T>(timeoutMs: number, check: () => Promise<T | undefined>, onTimeout: () => Error): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; ; i++) {
      Context.current().heartbeat(i);
      const v = await check();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw onTimeout();
      await Context.current().sleep(Math.min(100 * 2 ** i, 1000));
    }
  }

  /** Installed releases, newest first, and which one is live. */
  async function listReleases(ref: NodeRef): Promise<{ live: string | null; releases: string[] }> {
    const { svc } = nodeOf(ref);
    const [list, link] = await Promise.all([
      sh(ref, ['find', svc.root, '-mindepth', '2', '-maxdepth', '2', '-name', '.opsflow-release', '-printf', '%T@ %h\\n'], 60_000),
      sh(ref, ['readlink', '--', svc.live], 30_000),
    ]);
    const releases = list.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => ({ t: Number(l.slice(0, l.indexOf(' '))), id: path.posix.basename(l.slice(l.indexOf(' ') + 1)) }))
      .sort((a, b) => b.t - a.t)
      .map((r) => r.id);
    return { live: link.stdout.trim() ? path.posix.basename(link.stdout.trim()) : null, releases };
  }

  return {
    /** The service's nodes and layout as the inventory says today; recorded in history for the audit. */
    async resolveService(input: { environment: string; service: string }): Promise<ServicePlan> {
      const cfg = inventory.service(input.environment, input.service);
      const words = (a?: string[]) => a && quoteArgv(a);
      const nodes = cfg.nodes.map((node) => {
        const svc = inventory.nodeService(input.environment, input.service, node);
        const host = inventory.resolve(input.environment, { hosts: [node] })[0];
        return { ...host, root: svc.root, live: svc.live, restart: words(programArgv({ argv: svc.restart, sudo: svc.sudo })) as string, healthUrl: svc.healthUrl, build: words(svc.build), smoke: words(svc.smoke), haproxyServer: cfg.haproxy ? (cfg.haproxy.servers[node] ?? node) : undefined };
      });
      const shared = await findSharedRoots(nodes, (node, argv) => sh({ ...input, node }, argv, 30_000));
      if (shared.length) {
        const which = shared.map((p) => `${p.nodes[0]} and ${p.nodes[1]} have one release root (${p.dir})`).join('; ');
        throw new Misconfigured(`service ${input.service} in ${input.environment}: ${which}; switching the live release on one would switch it on the other, so nothing was changed: give each node a release root of its own`);
      }
      return {
        environment: input.environment,
        service: input.service,
        blue: cfg.blue,
        batchSize: cfg.batchSize,
        nodes: [...nodes.filter((n) => n.name === cfg.blue), ...nodes.filter((n) => n.name !== cfg.blue)],
        haproxy: cfg.haproxy && { backend: cfg.haproxy.backend, socket: cfg.haproxy.socket, via: cfg.haproxy.via },
        keep: cfg.release.keep,
        waitMs: Math.max(msToNumber(cfg.health.timeout as Duration), cfg.haproxy ? msToNumber(cfg.haproxy.drainTimeout as Duration) : 0),
      };
    },

    /** The release the live symlink points at, by id (the directory's name); null when there is none. */
    async currentRelease(ref: NodeRef): Promise<string | null> {
      const { svc } = nodeOf(ref);
      const res = await sh(ref, ['readlink', '--', svc.live], 30_000);
      const target = res.stdout.trim();
      return res.code === 0 && target ? path.posix.basename(target) : null;
    },

    async installRelease(input: NodeRef & { release: ReleaseSource }): Promise<'installed' | 'reused'> {
      const { svc } = nodeOf(input);
      const { release } = input;
      const [kind, src, ref] = release.git ? ['git', release.git.repo, release.git.ref] : ['tarball', release.tarball ?? '', ''];
      const res = await sh(input, ['sh', '-c', INSTALL, 'opsflow', svc.root, release.id, kind, src, ref, ...(svc.build ?? [])], 30 * 60_000);
      if (res.code === 0) return res.stdout.trim().split('\n').pop() === 'reused' ? 'reused' : 'installed';
      const why = res.stderr.trim().split('\n').slice(-5).join('\n');
      if (res.code === 3) throw new ReleaseConflict(`${input.node}: ${why}`);
      throw new InstallFailed(`installing ${release.id} on ${input.node} failed (exit ${res.code}): ${why}`);
    },

    async smokeTest(input: NodeRef & { releaseId: string }): Promise<string> {
      const { svc } = nodeOf(input);
      if (!svc.smoke) return 'no smoke test declared';
      const res = await sh(input, ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'opsflow', `${svc.root}/${input.releaseId}`, ...svc.smoke], 10 * 60_000);
      if (res.code !== 0) throw new SmokeTestFailed(`smoke test of ${input.releaseId} on ${input.node} failed (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(-1000)}`);
      return res.stdout.trim().slice(-1000);
    },

    /** Points the live symlink at a release, atomically (a new link renamed over the old one). */
    async switchRelease(input: NodeRef & { releaseId: string }): Promise<{ previous: string | null; changed: boolean }> {
      const { svc } = nodeOf(input);
      const res = await sh(input, ['sh', '-c', SWITCH, 'opsflow', svc.live, `${svc.root}/${input.releaseId}`], 30_000);
      if (res.code === 3) throw new ReleaseConflict(`${input.node}: ${res.stderr.trim()}`);
      if (res.code !== 0) throw new Error(`switching ${input.node} to ${input.releaseId} failed (exit ${res.code}): ${res.stderr.trim()}`);
      const [word, previous] = res.stdout.trim().split(' ');
      return { previous: previous ? path.posix.basename(previous) : null, changed: word === 'switched' };
    },

    async restartService(ref: NodeRef): Promise<void> {
      const { svc } = nodeOf(ref);
      const res = await sh(ref, programArgv({ argv: svc.restart, sudo: svc.sudo }), 5 * 60_000);
      // A restart command that says no is for an operator to look at, not for blind retries.
      if (res.code !== 0) throw new RestartFailed(`restart on ${ref.node} failed (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(-1000)}`);
    },

    /** Waits until the node's health URL answers as declared; HealthCheckFailed (final) after the timeout. */
    async checkHealth(ref: NodeRef): Promise<HealthResult> {
      const { svc } = nodeOf(ref);
      const cfg = inventory.service(ref.environment, ref.service).health;
      const started = Date.now();
      let last = 'no answer';
      let attempts = 0;
      return poll(
        msToNumber(cfg.timeout as Duration),
        async () => {
          attempts++;
          try {
            const res = await fetch(svc.healthUrl, { signal: AbortSignal.timeout(5_000) });
            const body = (await res.text()).slice(0, 2000);
            last = `HTTP ${res.status}${body ? `: ${body.trim().slice(0, 200)}` : ''}`;
            if (res.status === cfg.status && (!cfg.body || body.includes(cfg.body))) return { node: ref.node, url: svc.healthUrl, status: res.status, body: body.trim().slice(0, 500), attempts, ms: Date.now() - started };
          } catch (err) {
            last = (err as Error).message;
          }
          return undefined;
        },
        () => new HealthCheckFailed(`${ref.node} is not healthy after ${cfg.timeout}: ${svc.healthUrl} gave ${last} (want HTTP ${cfg.status}${cfg.body ? ` containing "${cfg.body}"` : ''})`),
      );
    },

    /**
     * Out: drain in HAProxy, wait for the node's sessions to end, then maintenance. In: ready, then wait until
     * HAProxy's own checks report it UP. A service without HAProxy has nothing to do.
     */
    async setRotation(input: NodeRef & { inRotation: boolean }): Promise<string> {
      const hp = haproxyOf(input);
      if (!hp) return 'no load balancer';
      const { at, backend, server } = hp;
      if (!input.inRotation) {
        await setServerState(ssh, at, backend, server, 'drain');
        await poll(hp.drainMs, async () => ((await serverStat(ssh, at, backend, server)).sessions === 0 ? true : undefined), () => new DrainTimeout(`${backend}/${server} still has sessions after ${hp.drainMs} ms of draining`));
        await setServerState(ssh, at, backend, server, 'maint');
        return `${backend}/${server} drained and in maintenance`;
      }
      await setServerState(ssh, at, backend, server, 'ready');
      const stat = await poll(hp.drainMs, async () => {
        const s = await serverStat(ssh, at, backend, server);
        return s.status.startsWith('UP') ? s : undefined;
      }, () => new HaproxyNotUp(`HAProxy does not report ${backend}/${server} UP after ${hp.drainMs} ms`));
      return `${backend}/${server} ${stat.status}`;
    },

    listReleases,

    /** Removes releases beyond `keep`, oldest first; the live one and `protect` stay whatever their age. */
    async pruneReleases(input: NodeRef & { protect: string[] }): Promise<string[]> {
      const { svc } = nodeOf(input);
      const { live, releases } = await listReleases(input);
      const keep = new Set([...(live ? [live] : []), ...input.protect]);
      const removable = releases.filter((id) => !keep.has(id)).slice(Math.max(svc.keep - keep.size, 0));
      if (removable.length) {
        const res = await sh(input, ['rm', '-rf', '--', ...removable.map((id) => `${svc.root}/${id}`)], 5 * 60_000);
        if (res.code !== 0) throw new Error(`pruning on ${input.node} failed: ${res.stderr.trim()}`);
      }
      return removable;
    },

    async tagRelease(input: { repo: string; ref: string; tag: string }): Promise<'tagged' | 'exists'> {
      return tag(input);
    },
  };
}

/** Tags the released commit in its repository and pushes the tag; an existing identical tag is fine. */
async function tag(input: { repo: string; ref: string; tag: string }): Promise<'tagged' | 'exists'> {
  const dir = await mkdtemp(path.join(tmpdir(), 'opsflow-tag-'));
  try {
    await run('git', ['clone', '-q', '--bare', '--', input.repo, dir]);
    const commit = (await run('git', ['-C', dir, 'rev-parse', '--verify', `${input.ref}^{commit}`])).stdout.trim();
    const remote = (await run('git', ['-C', dir, 'ls-remote', '--tags', 'origin', `refs/tags/${input.tag}`])).stdout.trim();
    if (remote) {
      const tagged = (await run('git', ['-C', dir, 'rev-parse', '--verify', `refs/tags/${input.tag}^{commit}`])).stdout.trim();
      if (tagged === commit) return 'exists';
      throw new TagConflict(`tag ${input.tag} already exists on ${tagged.slice(0, 12)}, not on the released ${commit.slice(0, 12)}`);
    }
    await run('git', ['-C', dir, '-c', 'user.name=opsflow', '-c', 'user.email=opsflow@localhost', 'tag', '-a', '-m', `deployed ${commit}`, input.tag, commit]);
    await run('git', ['-C', dir, 'push', '-q', 'origin', `refs/tags/${input.tag}`]);
    return 'tagged';
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
