// The codec server of Temporal's remote codec protocol, so the Web UI and `temporal --codec-endpoint` show
// encrypted payloads decoded (and encode what an operator types into the UI's forms):
//
//   POST /encode, POST /decode (also under /{namespace}/…, as the CLI's endpoint template sends them)
//   body and answer: { "payloads": [ { "metadata": { "<key>": "<base64>" }, "data": "<base64>" } ] }
//
// The browser calls it straight from the UI's page, so it answers CORS preflights for the UI's origins only.
// With a token set, every POST must carry `Authorization: Bearer <token>`; preflights never carry credentials.
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { log } from '../common/log';

export interface CodecServerOptions {
  codec: PayloadCodec;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Origins whose pages may call it (the Web UI's, e.g. http://127.0.0.1:8233). */
  origins: string[];
  /** Required as a bearer token on every request when set. */
  token?: string;
  /** Largest request body accepted. */
  maxBytes?: number;
}

export interface CodecServer {
  url: string;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const b64 = (s: unknown, what: string): Uint8Array => {
  if (typeof s !== 'string') throw new HttpError(400, `${what}: expected a base64 string`);
  return Buffer.from(s, 'base64');
};

function fromJson(body: unknown): Payload[] {
  const payloads = (body as { payloads?: unknown })?.payloads;
  if (!Array.isArray(payloads)) throw new HttpError(400, 'expected {"payloads": [...]}');
  return payloads.map((p: JsonPayload, i) => {
    if (typeof p !== 'object' || p === null) throw new HttpError(400, `payloads[${i}]: expected an object`);
    const metadata = Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v, `payloads[${i}].metadata.${k}`)]));
    return { metadata, data: p.data == null ? new Uint8Array() : b64(p.data, `payloads[${i}].data`) };
  });
}

function toJson(payloads: Payload[]): { payloads: JsonPayload[] } {
  const s = (u: Uint8Array) => Buffer.from(u).toString('base64');
  return { payloads: payloads.map((p) => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, s(v as Uint8Array)])), data: s(p.data ?? new Uint8Array()) })) };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(req: http.IncomingMessage, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, `body larger than ${max} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  const origins = new Set(opts.origins.map((o) => o.replace(/\/+$/, '')));
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      // A page from elsewhere gets no CORS headers and no work done: its browser refuses to show it anything.
      if (!origins.has(origin)) throw new HttpError(403, `origin ${origin} is not allowed (allowed: ${[...origins].join(', ') || 'none'})`);
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    const route = /^(?:\/[^/]+)?\/(encode|decode)\/?$/.exec(new URL(req.url ?? '/', 'http://x').pathname)?.[1] as 'encode' | 'decode' | undefined;
    if (!route) throw new HttpError(404, 'not found: POST /encode or /decode');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization, Authorization-Extras');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      throw new HttpError(405, `${req.method} not allowed: POST`);
    }
    if (opts.token !== undefined && !tokenMatches(req.headers.authorization, opts.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, req.headers.authorization ? 'wrong bearer token' : 'a bearer token is required');
    }
    const payloads = fromJson(await readBody(req, maxBytes));
    let out: Payload[];
    try {
      out = route === 'encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
    } catch (err) {
      throw new HttpError(422, `${route}: ${(err as Error).message}`);
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(toJson(out)));
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      // Never the body: it is what the encryption protects.
      log.warn({ status, method: req.method, path: req.url, namespace: req.headers['x-namespace'], origin: req.headers.origin, error: message }, 'codec request refused');
      if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
