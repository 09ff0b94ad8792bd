import Fastify, { type FastifyInstance } from 'fastify';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bodyRatePlugin, connectionsPlugin, errorHandlerPlugin, serverOptions } from '../src';

/**
 * The minimum body rate judges the client only while the server waits for it: over real TCP
 * connections, a stream route that stops reading (its own back-pressure: an upload waiting for S3)
 * is never told the client was too slow, and a client that trickles while the server reads is.
 * (The whole upload path through the gateway: tests/e2e/test/upload-limits.e2e.test.ts.)
 */
let app: FastifyInstance;
let port: number;
/** Resolves the server's pause: the route reads again only once the test says so. */
let resumeReading: () => void = () => undefined;
let paused: Promise<void> = Promise.resolve();
let pausing: () => void = () => undefined;

beforeAll(async () => {
  app = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUSTED_PROXIES: '' }));
  await app.register(connectionsPlugin);
  await app.register(errorHandlerPlugin);
  await app.register(bodyRatePlugin, { minBytesPerSecond: 50_000, windowMs: 200, graceMs: 0, bodyTimeoutMs: 60_000 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  // Reads the raw body as a stream (as the upload route does), stopping once after 64 KiB until told.
  app.post('/stream', { config: { longBody: true } }, async (request) => {
    let bytes = 0;
    let stopped = false;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (!stopped && bytes >= 64 * 1024) {
          stopped = true;
          const resumed = new Promise<void>((r) => (resumeReading = r));
          pausing();
          resumed.then(() => done(), done);
        } else done();
      },
    });
    try {
      await pipeline(request.raw, sink, { signal: request.bodyTooSlow });
    } catch (err) {
      throw request.bodyTooSlow.aborted ? request.bodyTooSlow.reason : err;
    }
    return { bytes };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
});
afterAll(async () => app.close());

/** A POST of `total` bytes sent `chunk` at a time, the next chunk once `next()` says so. */
function post(total: number, chunk: number, next: (sent: number) => Promise<void>) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/stream', method: 'POST', headers: { 'content-length': total }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> }));
    });
    void (async () => {
      for (let sent = 0; sent < total && !req.destroyed; sent += chunk) {
        await next(sent);
        if (!req.write(Buffer.alloc(Math.min(chunk, total - sent), 0x61))) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(() => undefined);
  });
}

describe('FX-02: the minimum body rate', () => {
  it('FX-02: while the route is not reading (its own back-pressure), the client is not judged, however long the pause', async () => {
    paused = new Promise<void>((r) => (pausing = r));
    const answer = post(4 * 1024 * 1024, 256 * 1024, async () => undefined);
    await paused;
    // The pause under test (the route waiting, as for S3): ten windows long. The client, which
    // would send at full speed, is held back by TCP meanwhile, so it reads nothing for 2 s.
    await new Promise((r) => setTimeout(r, 2_000));
    resumeReading();
    const res = await answer;
    expect(res).toEqual({ status: 200, body: { bytes: 4 * 1024 * 1024 } });
  });

  it('FX-02: a client that trickles while the route reads is stopped with 408 REQUEST_TOO_SLOW', async () => {
    pausing = () => resumeReading();
    const res = await post(1024 * 1024, 100, () => new Promise((r) => setTimeout(r, 20)));
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({ statusCode: 408, code: 'REQUEST_TOO_SLOW' });
  });
});
