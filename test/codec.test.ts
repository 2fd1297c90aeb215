// The AES-256-GCM payload codec, its keys, and the codec server the Web UI calls from the browser.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AesGcmCodec, CodecError, ENCODING, KEY_ID } from '../src/codec/aesGcm';
import { KeyError, keyringFromEnv, parseKeys } from '../src/codec/keys';
import { startCodecServer, type CodecServer } from '../src/codec/server';
import type { RunStatus } from '../src/runbook/protocol';
import { findTemporalCli } from '../src/temporal/binary';
import { startWorker, testEnv, unique, waitFor, writeInventory } from './support/harness';

const key = () => randomBytes(32).toString('base64');
const text = (u?: Uint8Array | null) => Buffer.from(u ?? []).toString();
const json = (v: unknown): Payload => defaultPayloadConverter.toPayload(v);

describe('keys', () => {
  it('takes "<id>:<base64>" entries, the first one current', () => {
    const ring = parseKeys(`k2:${key()}, k1:${key()}\n`, 'test');
    expect(ring.current.id).toBe('k2');
    expect([...ring.byId.keys()]).toEqual(['k2', 'k1']);
  });

  it('refuses bad keys with where and why', () => {
    expect(() => parseKeys('', 'X')).toThrow(/X: no keys/);
    expect(() => parseKeys(`nocolon`, 'X')).toThrow(/X: key 1: expected "<id>:<base64 key>"/);
    expect(() => parseKeys(`k1:${randomBytes(16).toString('base64')}`, 'X')).toThrow(/key 1 \("k1"\): 16 bytes, AES-256 needs 32/);
    expect(() => parseKeys(`k1:${key()},k1:${key()}`, 'X')).toThrow(/key 2: key id "k1" is listed twice/);
    expect(() => parseKeys(`bad id!:${key()}`, 'X')).toThrow(KeyError);
    expect(() => parseKeys(`k1:not*base64*at*all*`, 'X')).toThrow(/not valid base64/);
  });

  it('reads OPSFLOW_CODEC_KEYS or a key file that only its owner can read, never both', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'opsflow-keys-'));
    const file = path.join(dir, 'keys');
    writeFileSync(file, `# rotated 2026-01\nnew:${key()}\nold:${key()}\n`, { mode: 0o600 });
    expect(keyringFromEnv({ OPSFLOW_CODEC_KEY_FILE: file })?.current.id).toBe('new');
    expect(keyringFromEnv({ OPSFLOW_CODEC_KEYS: `a:${key()}` })?.current.id).toBe('a');
    expect(keyringFromEnv({})).toBeUndefined();
    expect(() => keyringFromEnv({ OPSFLOW_CODEC_KEYS: `a:${key()}`, OPSFLOW_CODEC_KEY_FILE: file })).toThrow(/not both/);
    chmodSync(file, 0o644);
    expect(() => keyringFromEnv({ OPSFLOW_CODEC_KEY_FILE: file })).toThrow(/readable by others; chmod 600/);
    expect(() => keyringFromEnv({ OPSFLOW_CODEC_KEY_FILE: path.join(dir, 'missing') })).toThrow(/OPSFLOW_CODEC_KEY_FILE .*missing: ENOENT/);
  });
});

describe('AES-256-GCM codec', () => {
  const k1 = `k1:${key()}`;
  const k2 = `k2:${key()}`;
  const old = new AesGcmCodec(parseKeys(k1, 'test'));
  const rotated = new AesGcmCodec(parseKeys(`${k2},${k1}`, 'test'));

  it('round-trips payloads, metadata included, and names the key in clear', async () => {
    const input = [json({ command: ['uname', '-r'], secret: 's3cr3t' }), json(null), { metadata: { encoding: new TextEncoder().encode('binary/plain') }, data: new Uint8Array([0, 1, 2]) }];
    const encoded = await old.encode(input);
    for (const p of encoded) {
      expect(text(p.metadata?.encoding)).toBe(ENCODING);
      expect(text(p.metadata?.[KEY_ID])).toBe('k1');
      expect(Buffer.from(p.data ?? []).toString('latin1')).not.toContain('s3cr3t');
    }
    // A fresh nonce each time: the same payload never encrypts to the same bytes.
    expect(Buffer.from((await old.encode([input[0]]))[0].data ?? []).equals(Buffer.from(encoded[0].data ?? []))).toBe(false);
    const decoded = await old.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([{ command: ['uname', '-r'], secret: 's3cr3t' }, null, new Uint8Array([0, 1, 2])]);
  });

  it('passes payloads written before encryption through decode', async () => {
    const plain = json({ a: 1 });
    expect(await old.decode([plain])).toEqual([plain]);
  });

  it('encrypts with the current key after a rotation and still decrypts what the old key wrote', async () => {
    const before = await old.encode([json('written with k1')]);
    const after = await rotated.encode([json('written with k2')]);
    expect(text(after[0].metadata?.[KEY_ID])).toBe('k2');
    expect((await rotated.decode([...before, ...after])).map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(['written with k1', 'written with k2']);
  });

  it('refuses a payload whose key it does not have, naming the key', async () => {
    const after = await rotated.encode([json('x')]);
    await expect(old.decode(after)).rejects.toThrow(new CodecError('payload was encrypted with key "k2", which is not configured here (known: k1); add it after the current key in OPSFLOW_CODEC_KEYS / OPSFLOW_CODEC_KEY_FILE'));
  });

  it('refuses tampered ciphertext, a relabelled key id and a truncated payload', async () => {
    const [p] = await old.encode([json({ amount: 100 })]);
    const flipped = Buffer.from(p.data ?? []);
    flipped[20] ^= 1;
    await expect(old.decode([{ ...p, data: flipped }])).rejects.toThrow(/payload \(key "k1"\) failed authentication: it was altered/);
    // The same key bytes under another id: the key id is authenticated data, so this is refused too.
    const sameKeyOtherId = new AesGcmCodec(parseKeys(`k9:${k1.slice(3)}`, 'test'));
    await expect(sameKeyOtherId.decode([{ ...p, metadata: { ...p.metadata, [KEY_ID]: new TextEncoder().encode('k9') } }])).rejects.toThrow(/failed authentication/);
    await expect(old.decode([{ ...p, data: new Uint8Array(10) }])).rejects.toThrow(/truncated/);
    await expect(old.decode([{ metadata: { encoding: p.metadata?.encoding as Uint8Array }, data: p.data }])).rejects.toThrow(/without the "encryption-key-id" metadata/);
  });
});

describe('codec server', () => {
  const origin = 'http://127.0.0.1:8233';
  const codec = new AesGcmCodec(parseKeys(`k1:${key()}`, 'test'));
  let open: CodecServer;
  let guarded: CodecServer;
  beforeAll(async () => {
    open = await startCodecServer({ codec, origins: [origin] });
    guarded = await startCodecServer({ codec, origins: [origin], token: 'let-me-in' });
  });
  afterAll(async () => {
    await open?.close();
    await guarded?.close();
  });

  /** The protocol's JSON: every bytes field base64. */
  const body = (payloads: Payload[]) => ({ payloads: payloads.map((p) => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(p.data ?? []).toString('base64') })) });
  const fromBody = (raw: unknown): Payload[] =>
    (raw as { payloads: { metadata: Record<string, string>; data: string }[] }).payloads.map((p) => ({ metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: Buffer.from(p.data, 'base64') }));
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers }, body: JSON.stringify(payload) });

  it('encodes and decodes as the Web UI calls it, also under a namespace path', async () => {
    const res = await post(`${open.url}/encode`, body([json({ by: 'alice' })]), { Origin: origin });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
    const encoded = fromBody(await res.json());
    expect(text(encoded[0].metadata?.encoding)).toBe(ENCODING);
    const dec = await post(`${open.url}/default/decode`, body(encoded));
    expect(defaultPayloadConverter.fromPayload(fromBody(await dec.json())[0])).toEqual({ by: 'alice' });
  });

  it("answers the browser's CORS preflight for the UI's origin only", async () => {
    const preflight = (o: string, url = `${open.url}/decode`) =>
      fetch(url, { method: 'OPTIONS', headers: { Origin: o, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace,authorization' } });
    const ok = await preflight(origin);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase().split(/,\s*/)).toEqual(expect.arrayContaining(['content-type', 'x-namespace', 'authorization']));
    // Preflights carry no credentials: the token-guarded server answers them too.
    expect((await preflight(origin, `${guarded.url}/decode`)).status).toBe(204);
    const evil = await preflight('https://evil.example');
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    expect((await post(`${open.url}/decode`, body([]), { Origin: 'https://evil.example' })).status).toBe(403);
  });

  it('refuses requests without the bearer token or with a wrong one', async () => {
    const none = await post(`${guarded.url}/decode`, body([]), { Origin: origin });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    // The UI's page may read why.
    expect(none.headers.get('access-control-allow-origin')).toBe(origin);
    expect(await none.json()).toEqual({ error: 'a bearer token is required' });
    const wrong = await post(`${guarded.url}/decode`, body([]), { Authorization: 'Bearer let-me-out' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'wrong bearer token' });
    const right = await post(`${guarded.url}/decode`, body([json(1)]), { Authorization: 'Bearer let-me-in' });
    expect(right.status).toBe(200);
  });

  it('answers bad requests with a status and a reason, never echoing payloads', async () => {
    expect((await fetch(`${open.url}/decode`)).status).toBe(405);
    expect((await post(`${open.url}/elsewhere`, body([]))).status).toBe(404);
    const notJson = await fetch(`${open.url}/decode`, { method: 'POST', body: 'payloads please' });
    expect([notJson.status, await notJson.json()]).toEqual([400, { error: 'body is not JSON' }]);
    expect((await post(`${open.url}/decode`, { nope: [] })).status).toBe(400);
    const [p] = await codec.encode([json('x')]);
    const other = await startCodecServer({ codec: new AesGcmCodec(parseKeys(`k2:${key()}`, 'test')), origins: [] });
    try {
      const res = await post(`${other.url}/decode`, body([p]));
      expect(res.status).toBe(422);
      expect(((await res.json()) as { error: string }).error).toMatch(/key "k1", which is not configured here/);
    } finally {
      await other.close();
    }
  });
});

/** `temporal workflow show -o json`, with every payload's base64 data decoded: what an operator can read. */
function temporalShow(address: string, workflowId: string, extra: string[] = []): Promise<string> {
  const cli = findTemporalCli();
  if (!cli) throw new Error('the temporal CLI is needed');
  const readable = (v: unknown): string[] =>
    !v || typeof v !== 'object' ? [] : Object.entries(v).flatMap(([k, x]) => (k === 'data' && typeof x === 'string' ? [Buffer.from(x, 'base64').toString('latin1')] : readable(x)));
  return new Promise((resolve, reject) =>
    execFile(cli, ['workflow', 'show', '--address', address, '-w', workflowId, '-o', 'json', ...extra], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(readable(JSON.parse(stdout)).join('\n')),
    ),
  );
}

describe('worker and CLI with encryption on', () => {
  it("run a workflow whose history a client without the keys cannot read, and `temporal --codec-endpoint` can", async () => {
    const env = await testEnv();
    const keys = `k1:${key()}`;
    const taskQueue = unique('codec');
    process.env.OPSFLOW_CODEC_KEYS = keys;
    let worker: Awaited<ReturnType<typeof startWorker>>;
    try {
      worker = await startWorker(env, writeInventory(), taskQueue);
    } finally {
      delete process.env.OPSFLOW_CODEC_KEYS;
    }
    try {
      const client = new Client({ connection: env.connection, dataConverter: { payloadCodecs: [new AesGcmCodec(parseKeys(keys, 'test'))] } });
      const handle = await client.workflow.start('fleetRun', {
        taskQueue,
        workflowId: unique('codec-run'),
        args: [{ environment: 'test', target: { hosts: ['h1'] }, command: ['echo', 'codec-secret'], approval: { approvers: ['alice'] } }],
      });
      await waitFor(async () => (await handle.query<RunStatus>('status')).state === 'waiting', 'the gate');
      await handle.executeUpdate('approve', { args: [{ by: 'alice' }] });
      expect(await handle.result()).toMatchObject({ ok: true, hosts: [{ stdout: 'codec-secret\n' }] });
      // Without the codec, the same history is ciphertext: decoding it fails on the first encrypted payload.
      await expect(env.client.workflow.getHandle(handle.workflowId).result()).rejects.toThrow(/Unknown encoding: binary\/encrypted/);
      expect(await temporalShow(env.address, handle.workflowId)).not.toContain('codec-secret');
      // The temporal CLI through a token-guarded codec server reads it decoded.
      const server = await startCodecServer({ codec: new AesGcmCodec(parseKeys(keys, 'test')), origins: [], token: 'cli-token' });
      try {
        const shown = await temporalShow(env.address, handle.workflowId, ['--codec-endpoint', server.url, '--codec-auth', 'Bearer cli-token']);
        expect(shown).toContain('codec-secret');
      } finally {
        await server.close();
      }
    } finally {
      await worker.stop();
      await env.teardown();
    }
  });
});
