// DNS for a system's record set: read it, and move every record at once to one infrastructure's addresses.
// Both providers apply a change as one transaction (Route53 change batch, Cloudflare batch endpoint), so a crash
// leaves the records wholly before or wholly after; a retried write of the same target changes nothing.
import { Context } from '@temporalio/activity';
import { DescribeAddressesCommand } from '@aws-sdk/client-ec2';
import { ChangeResourceRecordSetsCommand, GetChangeCommand, ListResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import type { Inventory } from '../config/inventory';
import type { SystemConfig } from '../config/systems';
import { ec2Client, route53Client } from './aws';
import { DnsConfigError, DnsProviderError, DnsProviderUnavailable, UnknownTarget } from '../common/errors';

/** Name → its A record addresses, sorted. An empty list: the name has no A record. */
export type RecordSet = Record<string, string[]>;

interface DnsProvider {
  read(names: string[]): Promise<RecordSet>;
  /** Returns a change id to wait on, if the provider propagates asynchronously. */
  write(target: RecordSet, current: RecordSet): Promise<string | undefined>;
  synced(changeId: string): Promise<boolean>;
}

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);
const bare = (name: string) => name.replace(/\.$/, '');
const sorted = (a: string[]) => [...a].sort();
export const sameRecords = (a: RecordSet, b: RecordSet) => Object.keys(b).every((n) => JSON.stringify(sorted(a[n] ?? [])) === JSON.stringify(sorted(b[n] ?? [])));

function route53(inventory: Inventory, dns: Extract<NonNullable<SystemConfig['dns']>, { provider: 'route53' }>): DnsProvider {
  const client = route53Client(inventory.awsAccount(dns.account));
  return {
    async read(names) {
      const out: RecordSet = Object.fromEntries(names.map((n) => [n, []]));
      let start: { name?: string; type?: string } = {};
      for (let page = 0; page < 1000; page++) {
        const res = await client.send(new ListResourceRecordSetsCommand({ HostedZoneId: dns.zoneId, StartRecordName: start.name, StartRecordType: start.type as never, MaxItems: 300 }));
        for (const rr of res.ResourceRecordSets ?? []) {
          const name = bare(rr.Name ?? '');
          if (rr.Type === 'A' && name in out) out[name] = sorted((rr.ResourceRecords ?? []).map((r) => r.Value ?? ''));
        }
        if (!res.IsTruncated) break;
        start = { name: res.NextRecordName, type: res.NextRecordType };
      }
      return out;
    },
    async write(target, current) {
      const changes = Object.entries(target)
        .filter(([name, values]) => JSON.stringify(sorted(values)) !== JSON.stringify(sorted(current[name] ?? [])))
        .map(([name, values]) =>
          values.length
            ? { Action: 'UPSERT' as const, ResourceRecordSet: { Name: fqdn(name), Type: 'A' as const, TTL: dns.ttl, ResourceRecords: values.map((Value) => ({ Value })) } }
            : { Action: 'DELETE' as const, ResourceRecordSet: { Name: fqdn(name), Type: 'A' as const, TTL: dns.ttl, ResourceRecords: (current[name] ?? []).map((Value) => ({ Value })) } },
        );
      if (!changes.length) return undefined;
      const res = await client.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: dns.zoneId, ChangeBatch: { Comment: 'opsflow', Changes: changes } }));
      return res.ChangeInfo?.Id;
    },
    async synced(changeId) {
      const res = await client.send(new GetChangeCommand({ Id: changeId }));
      return res.ChangeInfo?.Status === 'INSYNC';
    },
  };
}

interface CfRecord {
  id: string;
  type: string;
  name: string;
  content: string;
}

function cloudflare(dns: Extract<NonNullable<SystemConfig['dns']>, { provider: 'cloudflare' }>): DnsProvider {
  const token = process.env[dns.tokenEnv];
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    if (!token) throw new DnsConfigError(`Cloudflare: the API token variable ${dns.tokenEnv} is not set on the worker`);
    const res = await fetch(`${dns.apiUrl}/zones/${encodeURIComponent(dns.zoneId)}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const json = (await res.json().catch(() => ({}))) as { success?: boolean; errors?: { code: number; message: string }[]; result?: T };
    if (!res.ok || !json.success) {
      const why = (json.errors ?? []).map((e) => `${e.code}: ${e.message}`).join('; ') || `HTTP ${res.status}`;
      // Authentication and request errors do not mend by themselves; server errors may.
      const message = `Cloudflare ${method} ${path}: ${why}`;
      throw res.status >= 400 && res.status < 500 && res.status !== 429 ? new DnsProviderError(message) : new DnsProviderUnavailable(message);
    }
    return json.result as T;
  };
  const list = async (name: string) => call<CfRecord[]>('GET', `/dns_records?type=A&name.exact=${encodeURIComponent(name)}&per_page=5000`);
  return {
    async read(names) {
      const out: RecordSet = {};
      for (const name of names) out[name] = sorted((await list(name)).map((r) => r.content));
      return out;
    },
    async write(target) {
      const deletes: { id: string }[] = [];
      const posts: { type: 'A'; name: string; content: string; ttl: number; proxied: boolean }[] = [];
      for (const [name, values] of Object.entries(target)) {
        const existing = await list(name);
        for (const r of existing) if (!values.includes(r.content)) deletes.push({ id: r.id });
        for (const v of values) if (!existing.some((r) => r.content === v)) posts.push({ type: 'A', name, content: v, ttl: dns.ttl, proxied: false });
      }
      if (deletes.length || posts.length) await call('POST', '/dns_records/batch', { deletes, posts });
      return undefined;
    },
    async synced() {
      return true;
    },
  };
}

function provider(inventory: Inventory, system: string): DnsProvider {
  const dns = inventory.system(system).dns;
  if (!dns) throw new DnsConfigError(`system ${system} declares no dns provider`);
  return dns.provider === 'route53' ? route53(inventory, dns) : cloudflare(dns);
}

/** Every name of the system's record set: those the infrastructures give addresses for. */
export function recordNames(cfg: SystemConfig): string[] {
  return [...new Set(Object.values(cfg.infrastructures).flatMap((i) => Object.keys(i.addresses)))].sort();
}

export function createDnsActivities({ inventory }: { inventory: Inventory }) {
  return {
    async dnsRecords(input: { system: string }): Promise<RecordSet> {
      return provider(inventory, input.system).read(recordNames(inventory.system(input.system)));
    },

    /** The record set pointing at one infrastructure: its literal addresses, and its Elastic IPs looked up by Name tag. */
    async infrastructureRecords(input: { system: string; infrastructure: string }): Promise<RecordSet> {
      const cfg = inventory.system(input.system);
      const infra = cfg.infrastructures[input.infrastructure];
      if (!infra) throw new UnknownTarget(`${input.system} has no infrastructure "${input.infrastructure}"`);
      const eipNames = [...new Set(Object.values(infra.addresses).flatMap((t) => ('eip' in t ? [t.eip] : [])))];
      const eips = new Map<string, string>();
      if (eipNames.length) {
        const res = await ec2Client(inventory.awsAccount(infra.aws)).send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:Name', Values: eipNames }] }));
        for (const a of res.Addresses ?? []) {
          const name = a.Tags?.find((t) => t.Key === 'Name')?.Value;
          if (name && a.PublicIp) eips.set(name, a.PublicIp);
        }
        const missing = eipNames.filter((n) => !eips.has(n));
        if (missing.length) throw new DnsConfigError(`${input.system}/${input.infrastructure}: no Elastic IP named ${missing.join(', ')} in ${inventory.awsAccount(infra.aws).region}`);
      }
      return Object.fromEntries(recordNames(cfg).map((name) => {
        const t = infra.addresses[name];
        return [name, t ? ['eip' in t ? (eips.get(t.eip) as string) : t.address] : []];
      }));
    },

    /**
     * Sets every record of `records` in one change, waits until the provider reports it in sync, and reads it back:
     * the activity ends only when the provider answers with exactly these addresses.
     */
    async setDnsRecords(input: { system: string; records: RecordSet }): Promise<{ changed: boolean; records: RecordSet }> {
      const ctx = Context.current();
      const dns = provider(inventory, input.system);
      const names = Object.keys(input.records);
      const current = await dns.read(names);
      if (sameRecords(current, input.records)) return { changed: false, records: current };
      const changeId = await dns.write(input.records, current);
      for (let i = 0; changeId && !(await dns.synced(changeId)); i++) {
        ctx.heartbeat({ waiting: 'INSYNC', changeId });
        await ctx.sleep(Math.min(500 * 2 ** i, 10_000));
      }
      const after = await dns.read(names);
      if (!sameRecords(after, input.records)) throw new Error(`${input.system}: after the change the provider answers ${JSON.stringify(after)}, not ${JSON.stringify(input.records)}`);
      return { changed: true, records: after };
    },
  };
}
