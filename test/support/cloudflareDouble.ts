// A DOUBLE of Cloudflare's DNS records API (client/v4), because the real one cannot be reached from here. It
// follows the real shapes: bearer-token auth, the { success, errors, messages, result, result_info } envelope,
// record objects { id, type, name, content, ttl, proxied }, list filters by exact name and type, and the batch
// endpoint applying deletes, patches, puts and posts in that order as one transaction.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CfRecord {
  id: string;
  type: string;
  name: string;
  content: string;
  ttl: number;
  proxied: boolean;
}

export interface CloudflareDouble {
  apiUrl: string;
  token: string;
  zoneId: string;
  records(): CfRecord[];
  /** Every request, for assertions on what the code under test sent. */
  requests: { method: string; path: string; body?: unknown }[];
  close(): Promise<void>;
}

const envelope = (result: unknown, extra: Record<string, unknown> = {}) => ({ success: true, errors: [], messages: [], result, ...extra });
const failure = (code: number, message: string) => ({ success: false, errors: [{ code, message }], messages: [], result: null });

export async function startCloudflareDouble(initial: Omit<CfRecord, 'id'>[] = []): Promise<CloudflareDouble> {
  const token = `cf-${randomBytes(12).toString('hex')}`;
  const zoneId = randomBytes(16).toString('hex');
  let store: CfRecord[] = initial.map((r) => ({ ...r, id: randomBytes(16).toString('hex') }));
  const requests: CloudflareDouble['requests'] = [];

  const create = (r: Partial<CfRecord>): CfRecord => {
    if (!r.type || !r.name || !r.content) throw Object.assign(new Error('DNS record is invalid: type, name and content are required'), { code: 9000 });
    return { id: randomBytes(16).toString('hex'), type: r.type, name: r.name, content: r.content, ttl: r.ttl ?? 1, proxied: r.proxied ?? false };
  };
  const find = (records: CfRecord[], id: string) => {
    const i = records.findIndex((r) => r.id === id);
    if (i < 0) throw Object.assign(new Error('Record does not exist.'), { code: 81044 });
    return i;
  };

  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://double');
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      let body: Record<string, unknown> = {};
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        return send(400, failure(6007, 'Malformed JSON in request body'));
      }
      requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, body: raw ? body : undefined });
      if (req.headers.authorization !== `Bearer ${token}`) return send(403, failure(10000, 'Authentication error'));
      const m = url.pathname.match(/^\/client\/v4\/zones\/([^/]+)\/dns_records(?:\/([^/]+))?$/);
      if (!m || m[1] !== zoneId) return send(404, failure(7003, 'Could not route to the requested zone or path'));
      const id = m[2];
      try {
        if (id === 'batch' && req.method === 'POST') {
          // One transaction: work on a copy, keep it only if every operation succeeded.
          const next = store.map((r) => ({ ...r }));
          const out = { deletes: [] as CfRecord[], patches: [] as CfRecord[], puts: [] as CfRecord[], posts: [] as CfRecord[] };
          for (const d of (body.deletes as { id: string }[]) ?? []) out.deletes.push(...next.splice(find(next, d.id), 1));
          for (const p of (body.patches as Partial<CfRecord>[]) ?? []) {
            const i = find(next, p.id as string);
            next[i] = { ...next[i], ...p, id: next[i].id };
            out.patches.push(next[i]);
          }
          for (const p of (body.puts as Partial<CfRecord>[]) ?? []) {
            const i = find(next, p.id as string);
            next[i] = { ...create(p), id: next[i].id };
            out.puts.push(next[i]);
          }
          for (const p of (body.posts as Partial<CfRecord>[]) ?? []) {
            const r = create(p);
            next.push(r);
            out.posts.push(r);
          }
          store = next;
          return send(200, envelope(out));
        }
        if (!id && req.method === 'GET') {
          const name = url.searchParams.get('name.exact') ?? url.searchParams.get('name');
          const type = url.searchParams.get('type');
          const result = store.filter((r) => (!name || r.name === name) && (!type || r.type === type));
          return send(200, envelope(result, { result_info: { page: 1, per_page: 5000, count: result.length, total_count: result.length, total_pages: 1 } }));
        }
        if (!id && req.method === 'POST') {
          const r = create(body as Partial<CfRecord>);
          store.push(r);
          return send(200, envelope(r));
        }
        if (id && req.method === 'GET') return send(200, envelope(store[find(store, id)]));
        if (id && (req.method === 'PUT' || req.method === 'PATCH')) {
          const i = find(store, id);
          store[i] = req.method === 'PUT' ? { ...create(body as Partial<CfRecord>), id } : { ...store[i], ...(body as Partial<CfRecord>), id };
          return send(200, envelope(store[i]));
        }
        if (id && req.method === 'DELETE') {
          store.splice(find(store, id), 1);
          return send(200, envelope({ id }));
        }
        return send(405, failure(10405, 'Method not allowed'));
      } catch (err) {
        const e = err as Error & { code?: number };
        return send(400, failure(e.code ?? 1000, e.message));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}/client/v4`,
    token,
    zoneId,
    records: () => store.map((r) => ({ ...r })),
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
