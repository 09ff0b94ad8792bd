import { ConfigError, loadConfig } from '@scs/common';
import Fastify, { type FastifyInstance } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { freePort } from '@scs/local-stack/emulator';
import { buildGateway, GatewayConfig, isPrivatePath, upstreamFor } from '@scs/local-stack/gateway/app';
import { rawExchange, send } from '@scs/testing/http-client';

interface Echo {
  service: string;
  method: string;
  url: string;
  host?: string;
  forwardedFor?: string;
  forwardedProto?: string;
  headerNames: string[];
  bytes: number;
  sha256: string;
}

/** A tiny upstream that says who it is and what it received (body hashed as it streams in). */
async function upstream(service: string): Promise<{ app: FastifyInstance; url: string; aborted: EventEmitter }> {
  const app = Fastify();
  const aborted = new EventEmitter();
  // An early answer, as a service gives it (401 before the body, 413 on the declared length).
  app.post('/api/files/refuse-early', async (_request, reply) =>
    reply.code(413).send({ statusCode: 413, code: 'FILE_TOO_LARGE', error: 'Payload Too Large', message: 'too big' }),
  );
  // Reads slowly and reports a body that ends before it is complete.
  app.post('/api/files/sink', async (request) => {
    try {
      for await (const chunk of request.body as AsyncIterable<Buffer>) void chunk;
    } catch {
      aborted.emit('aborted', request.url);
    }
    return { ok: true };
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.get('/auth/cookies', async (_request, reply) => {
    reply.header('set-cookie', ['a=1; Path=/auth; HttpOnly; SameSite=Strict', 'b=2; Path=/; Max-Age=0']);
    return reply.code(302).header('location', '/somewhere/else?x=1').send();
  });
  app.get('/api/files/too-large', async (_request, reply) =>
    reply.code(413).send({ statusCode: 413, code: 'FILE_TOO_LARGE', error: 'Payload Too Large', message: 'too big' }),
  );
  app.all('/*', async (request): Promise<Echo> => {
    const hash = createHash('sha256');
    let bytes = 0;
    if (request.body instanceof Readable) {
      for await (const chunk of request.body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
    }
    return {
      service,
      method: request.method,
      url: request.url,
      host: request.headers.host,
      forwardedFor: request.headers['x-forwarded-for'] as string | undefined,
      forwardedProto: request.headers['x-forwarded-proto'] as string | undefined,
      headerNames: Object.keys(request.headers),
      bytes,
      sha256: hash.digest('hex'),
    };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, aborted };
}

describe('dev gateway (the ALB path rules)', () => {
  let auth: Awaited<ReturnType<typeof upstream>>;
  let upload: Awaited<ReturnType<typeof upstream>>;
  let backup: Awaited<ReturnType<typeof upstream>>;
  let gateway: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    [auth, upload, backup] = await Promise.all([upstream('auth'), upstream('upload'), upstream('backup-sync')]);
    const config = loadConfig(GatewayConfig, {
      AUTH_URL: auth.url,
      UPLOAD_URL: upload.url,
      BACKUP_URL: backup.url,
      LOG_LEVEL: 'silent',
    });
    gateway = await buildGateway(config);
    await gateway.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([auth?.app.close(), upload?.app.close(), backup?.app.close()]);
  });

  const echo = async (path: string, init?: RequestInit): Promise<Echo> => {
    const res = await fetch(`${base}${path}`, init);
    expect(res.status).toBe(200);
    return (await res.json()) as Echo;
  };

  it.each([
    ['/auth/login', 'auth'],
    ['/auth/jwks.json', 'auth'],
    ['/auth/', 'auth'],
    ['/auth', 'upload'], // `/auth/*` needs the slash
    ['/authority', 'upload'],
    ['/api/files', 'upload'],
    ['/api/files/123/download', 'upload'],
    ['/api/filesX', 'upload'], // `/api/files*` matches any continuation
    ['/api/backup/status', 'backup-sync'],
    ['/api/backup/reconcile', 'backup-sync'],
    ['/api/backup', 'upload'], // `/api/backup/*` needs the slash
    ['/api/backupX/status', 'upload'],
    ['/', 'upload'],
    ['/index.html', 'upload'],
    ['/assets/app.js', 'upload'],
    ['/AUTH/login', 'upload'], // ALB path patterns are case-sensitive
  ])('%s goes to %s, path and query unchanged', async (path, service) => {
    expect(upstreamFor(path)).toBe(service);
    const url = `${path}?b=2&a=%2F1&flag`;
    const got = await echo(url);
    expect(got.service).toBe(service);
    expect(got.url).toBe(url);
  });

  it('decides on the path only, never on the query string', async () => {
    expect((await echo('/?next=/auth/login')).service).toBe('upload');
    expect((await echo('/api/backup?x=/api/backup/status')).service).toBe('upload');
  });

  it('passes every method', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const got = await echo('/api/files/1', { method });
      expect(got).toMatchObject({ service: 'upload', method });
    }
  });

  it('sets X-Forwarded-For from the client socket (ignoring a forged one) and keeps the Host header', async () => {
    const got = await echo('/auth/me', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(got.forwardedFor).toBe('127.0.0.1');
    expect(got.forwardedProto).toBe('http');
    expect(got.host).toBe(new URL(base).host);
  });

  it('streams a 5 MiB body through intact, with and without a content-length', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const sha256 = createHash('sha256').update(body).digest('hex');

    const sized = await echo('/api/files', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(sized).toMatchObject({ service: 'upload', bytes: body.length, sha256 });

    // Chunked: 80 chunks of 64 KiB from a stream, as a browser upload or curl -T would send them.
    const chunks = Array.from({ length: 80 }, (_, i) => body.subarray(i * 65_536, (i + 1) * 65_536));
    const streamed = await echo('/api/files', {
      method: 'POST',
      body: Readable.toWeb(Readable.from(chunks)) as ReadableStream<Uint8Array>,
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      duplex: 'half',
    } as RequestInit);
    expect(streamed).toMatchObject({ service: 'upload', bytes: body.length, sha256 });
  });

  it('passes JSON bodies through unparsed (any content type)', async () => {
    const text = '{"username":"alice","password":"not parsed here"}';
    const got = await echo('/auth/login', { method: 'POST', body: text, headers: { 'content-type': 'application/json' } });
    expect(got).toMatchObject({ service: 'auth', bytes: text.length, sha256: createHash('sha256').update(text).digest('hex') });
  });

  it('preserves status codes, Location and every Set-Cookie', async () => {
    const res = await fetch(`${base}/auth/cookies`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/somewhere/else?x=1');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/auth; HttpOnly; SameSite=Strict', 'b=2; Path=/; Max-Age=0']);

    const tooLarge = await fetch(`${base}/api/files/too-large`);
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ code: 'FILE_TOO_LARGE' });
  });

  it('an upstream\'s early answer (413 before a 5 MiB body is read) reaches the client, and its connection serves the next request', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const afterAnswer of ['finish', 'stop'] as const) {
        const res = await send(`${base}/api/files/refuse-early`, { body, agent, afterAnswer, headers: { 'content-type': 'application/octet-stream' } });
        expect(res.status).toBe(413);
        expect(res.json()).toMatchObject({ code: 'FILE_TOO_LARGE' });
        expect((await send(`${base}/api/files/after`, { agent })).status).toBe(200);
      }
    } finally {
      agent.destroy();
    }
    const viaFetch = await fetch(`${base}/api/files/refuse-early`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
    expect(viaFetch.status).toBe(413);
  });

  it('A3: Expect: 100-continue: the gateway answers 100 Continue and forwards the body without the Expect header', async () => {
    const body = randomBytes(2_200_000);
    const res = await send(`${base}/api/files`, { body, headers: { expect: '100-continue', 'content-type': 'application/octet-stream' } });
    expect(res.continued).toBe(true);
    expect(res.status).toBe(200);
    const echo = res.json<Echo>();
    expect(echo).toMatchObject({ service: 'upload', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    expect(echo.headerNames).not.toContain('expect');
  });

  it('hop-by-hop request headers (Upgrade, Keep-Alive, TE, Proxy-Connection, those named in Connection) are not forwarded and never make a 502', async () => {
    const res = await send(`${base}/api/files/hop`, {
      headers: { upgrade: 'websocket', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-connection': 'keep-alive', connection: 'keep-alive, x-private', 'x-private': '1', 'x-kept': '1' },
    });
    expect(res.status).toBe(200);
    const names = res.json<Echo>().headerNames;
    for (const name of ['upgrade', 'keep-alive', 'te', 'proxy-connection', 'x-private']) expect(names).not.toContain(name);
    expect(names).toContain('x-kept');
  });

  it.each(['/metrics', '/metrics?x=1', '/%6Detrics', '/%6d%65trics', '/metrics/', '/metrics/anything'])('%s is not reachable through the gateway (404, the upstream never asked)', async (path) => {
    expect(isPrivatePath(path)).toBe(true);
    const res = await fetch(`${base}${path}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: expect.any(String) });
  });

  it('a GET with a body: the body is not announced to the upstream, and the client connection serves the next request', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const res = await send(`${base}/api/files/with-body`, { method: 'GET', body: randomBytes(4096), agent });
      expect(res.status).toBe(200);
      expect(res.json<Echo>()).toMatchObject({ method: 'GET', bytes: 0 });
      expect(res.json<Echo>().headerNames).not.toContain('content-length');
      const next = await send(`${base}/api/files/next`, { agent });
      expect(next.status).toBe(200);
      expect(next.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('FU-14: a client that goes away mid-body aborts the upstream request (nothing waits for bytes that never come)', async () => {
    const noticed = once(upload.aborted, 'aborted');
    const req = httpRequest(`${base}/api/files/sink`, { method: 'POST', headers: { 'content-length': 10 * 1024 * 1024, 'content-type': 'application/octet-stream' } });
    req.on('error', () => undefined);
    await new Promise((written) => req.write(randomBytes(256 * 1024), written));
    req.destroy();
    expect(await noticed).toEqual(['/api/files/sink']);
  });

  it('a malformed request is answered by the gateway itself in the product error shape', async () => {
    const badUrl = await rawExchange(base, 'GET /api/files/%C0%AF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(badUrl.answer?.status).toBe(400);
    expect(badUrl.answer?.json()).toMatchObject({ statusCode: 400, code: 'BAD_URL' });
    const tooLarge = await rawExchange(base, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(tooLarge.answer?.status).toBe(431);
    expect(tooLarge.answer?.json()).toMatchObject({ statusCode: 431, code: 'HEADERS_TOO_LARGE' });
  });

  it('answers its own /health', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  describe('with an upstream that is down', () => {
    let down: FastifyInstance;
    let downBase: string;

    beforeAll(async () => {
      const nobody = `http://127.0.0.1:${await freePort()}`;
      down = await buildGateway(loadConfig(GatewayConfig, { AUTH_URL: auth.url, UPLOAD_URL: upload.url, BACKUP_URL: nobody, LOG_LEVEL: 'silent' }));
      await down.listen({ host: '127.0.0.1', port: 0 });
      downBase = `http://127.0.0.1:${(down.server.address() as AddressInfo).port}`;
    });
    afterAll(async () => down?.close());

    it('answers 503 in the product error shape, with Retry-After, without hanging', async () => {
      const res = await fetch(`${downBase}/api/backup/status`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toEqual({
        statusCode: 503,
        code: 'UPSTREAM_UNAVAILABLE',
        error: 'Service Unavailable',
        message: expect.stringContaining('backup-sync'),
      });
    });

    it('keeps routing to the upstreams that are up', async () => {
      const res = await fetch(`${downBase}/auth/me`);
      expect(((await res.json()) as Echo).service).toBe('auth');
    });

    it('also for a POST with a body', async () => {
      const res = await fetch(`${downBase}/api/backup/restore`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    });
  });

  it('refuses a bad upstream URL at start-up, naming the variable', () => {
    expect(() => loadConfig(GatewayConfig, { AUTH_URL: 'ftp://example' })).toThrow(ConfigError);
    expect(() => loadConfig(GatewayConfig, { UPLOAD_URL: 'http://127.0.0.1:3002/path' })).toThrow(/UPLOAD_URL/);
  });
});
