import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { connectionsPlugin, errorHandlerPlugin, type LingerOutcome, serverOptions, Unauthorized } from '../src';

/**
 * The connection hygiene every server registers, over real TCP connections (`inject` has none):
 * what happens to a body left unread by an early answer, and how requests the HTTP parser or the
 * router refuse are answered.
 */
const MiB = 1024 * 1024;

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUSTED_PROXIES: '' }));
  await app.register(connectionsPlugin, { drainMaxBytes: 256 * 1024, discardTimeoutMs: 1_000, lingeringTimeoutMs: 1_000, lingeringTimeMs: 60_000 });
  await app.register(errorHandlerPlugin);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  // Refused before any body byte is read, as the authenticate plugin does.
  app.post('/private', { onRequest: async () => Promise.reject(new Unauthorized('Sign in first')) }, async () => ({ ok: true }));
  // Refused after the first chunk, as the upload service does for a wrong file type.
  app.post('/sniff', async (request, reply) => {
    const body = request.body as NodeJS.ReadableStream;
    await once(body, 'readable');
    return reply.code(415).send({ statusCode: 415, code: 'UNSUPPORTED_FILE_TYPE', error: 'Unsupported Media Type', message: 'no' });
  });
  // Reads the whole body.
  app.post('/echo', async (request) => {
    let bytes = 0;
    for await (const chunk of request.body as AsyncIterable<Buffer>) bytes += chunk.length;
    return { bytes };
  });
  app.get('/files/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  app.get('/ok', async () => ({ ok: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
});

afterAll(async () => app.close());

/** A TCP client that records what it receives and how the connection ended. */
interface Conversation {
  socket: Socket;
  received: () => string;
  /** Resolves with how the server ended the connection: `end` (FIN), `reset`, or `close`. */
  ended: Promise<'end' | 'reset' | 'close'>;
  /** Resolves once `count` HTTP answers have arrived (counted by their status lines). */
  answers: (count: number) => Promise<string>;
}

function converse(to = port): Conversation {
  // Half-open allowed: the client goes on sending after the server's FIN, as an uploading client does.
  const socket = connect({ port: to, host: '127.0.0.1', allowHalfOpen: true });
  let text = '';
  const waiters: (() => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    for (const wake of waiters.splice(0)) wake();
  });
  const ended = new Promise<'end' | 'reset' | 'close'>((resolve) => {
    socket.once('end', () => resolve('end'));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'close'));
    socket.once('close', () => resolve('close'));
  });
  const answers = (count: number) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const statuses = text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
        const complete = statuses.length >= count && /\r\n\r\n[^]*$/.test(text) && bodiesComplete(text, count);
        if (complete) return resolve(text);
        if (socket.destroyed) return reject(new Error(`connection closed after: ${text}`));
        waiters.push(check);
      };
      socket.once('close', check);
      check();
    });
  return { socket, received: () => text, ended, answers };
}

/** True when the first `count` answers in `text` have their whole Content-Length body. */
function bodiesComplete(text: string, count: number): boolean {
  let rest = text;
  for (let i = 0; i < count; i++) {
    const head = rest.indexOf('\r\n\r\n');
    if (head < 0) return false;
    const length = Number(/content-length: *(\d+)/i.exec(rest.slice(0, head))?.[1] ?? 0);
    if (rest.length < head + 4 + length) return false;
    rest = rest.slice(head + 4 + length);
  }
  return true;
}

const post = (path: string, length: number | 'chunked', extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n` +
  `${length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`}\r\n${extra}\r\n`;
const GET_OK = 'GET /ok HTTP/1.1\r\nHost: test\r\n\r\n';

/** Writes `bytes` in 64 KiB chunks as fast as the socket takes them; stops quietly if it closes. */
async function writeBytes(socket: Socket, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let sent = 0; sent < bytes && !socket.destroyed; sent += chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
    if (!socket.write(piece)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
  }
}

describe('a body left unread by an early answer', () => {
  it('a small rest is read and thrown away: the same connection answers the next request (keep-alive kept)', async () => {
    const c = converse();
    c.socket.write(post('/private', 100 * 1024));
    await writeBytes(c.socket, 100 * 1024);
    c.socket.write(GET_OK);
    const text = await c.answers(2);
    expect(text).toMatch(/^HTTP\/1\.1 401 /);
    expect(text.split('\r\n\r\n')[0]).not.toMatch(/connection: close/i);
    expect(text).toMatch(/HTTP\/1\.1 200 OK[^]*\{"ok":true\}$/);
    c.socket.destroy();
  });

  it('a rest read halfway (by a parser that stopped at the answer) is drained as well', async () => {
    const c = converse();
    c.socket.write(post('/sniff', 200 * 1024));
    await writeBytes(c.socket, 200 * 1024);
    c.socket.write(GET_OK);
    const text = await c.answers(2);
    expect(text).toMatch(/^HTTP\/1\.1 415 /);
    expect(text).toMatch(/HTTP\/1\.1 200 OK[^]*\{"ok":true\}$/);
    c.socket.destroy();
  });

  it.each([
    ['refused before the body', '/private', 401],
    ['refused after the first bytes', '/sniff', 415],
  ])('a large rest (%s): the answer says Connection: close, the client can send everything, and the server ends with a FIN, not a reset', async (_what, path, status) => {
    const c = converse();
    c.socket.write(post(path, 3 * MiB));
    await writeBytes(c.socket, 3 * MiB);
    expect(await c.ended).toBe('end');
    expect(c.received()).toMatch(new RegExp(`^HTTP/1\\.1 ${status} [^]*connection: close`, 'i'));
    expect(bodiesComplete(c.received(), 1)).toBe(true);
  });

  it('a chunked rest closes the connection the same way', async () => {
    const c = converse();
    c.socket.write(post('/private', 'chunked'));
    for (let i = 0; i < 8; i++) c.socket.write(`10000\r\n${'a'.repeat(0x10000)}\r\n`);
    c.socket.write('0\r\n\r\n');
    expect(await c.ended).toBe('end');
    expect(c.received()).toMatch(/^HTTP\/1\.1 401 [^]*connection: close/i);
  });

  it('a client that stops sending mid-body is disconnected after the discard timeout, never held open', async () => {
    for (const declared of [100 * 1024, 100 * MiB]) {
      const c = converse();
      c.socket.write(post('/private', declared));
      c.socket.write('a'.repeat(1024));
      expect(['end', 'close', 'reset']).toContain(await c.ended);
      expect(c.received()).toMatch(/^HTTP\/1\.1 401 /);
    }
  });

  /** Sends `chunk` until `stop()` or the connection closes, honouring backpressure; resolves with the bytes sent. */
  const sendUntil = async (socket: Socket, chunk: string, stop: (sent: number) => boolean) => {
    let sent = 0;
    const closed = once(socket, 'close').catch(() => undefined);
    while (!socket.destroyed && !stop(sent)) {
      sent += chunk.length;
      if (!socket.write(chunk)) await Promise.race([once(socket, 'drain').catch(() => undefined), closed]);
    }
    return sent;
  };
  const CHUNK = `10000\r\n${'a'.repeat(0x10000)}\r\n`;

  it('FU-01: a client busy sending that reads its answer only after 64 MiB more still gets it, not a reset (lingering close)', async () => {
    const c = converse();
    // A client whose event loop is busy: nothing it receives is read until it has sent 64 MiB more.
    c.socket.pause();
    c.socket.write(post('/private', 'chunked'));
    await sendUntil(c.socket, CHUNK, (sent) => sent >= 64 * MiB);
    expect(c.socket.destroyed).toBe(false);
    c.socket.resume();
    const text = await c.answers(1);
    expect(text).toMatch(/^HTTP\/1\.1 401 [^]*connection: close/i);
    c.socket.end('0\r\n\r\n');
    expect(await c.ended).toBe('end');
  });

  it('a client that keeps sending past the lingering time is cut off, its answer sent first', async () => {
    const ends: LingerOutcome[] = [];
    const short = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUSTED_PROXIES: '' }));
    await short.register(connectionsPlugin, { lingeringTimeMs: 500, lingeringTimeoutMs: 60_000, onLingerEnd: (l) => ends.push(l) });
    short.post('/private', { onRequest: async () => Promise.reject(new Unauthorized('Sign in first')) }, async () => ({ ok: true }));
    await short.listen({ host: '127.0.0.1', port: 0 });
    try {
      const c = converse((short.server.address() as AddressInfo).port);
      c.socket.write(post('/private', 'chunked'));
      // Without the total limit this client would be read from for as long as it sends: the test would time out.
      await sendUntil(c.socket, CHUNK, () => false);
      await once(c.socket, 'close').catch(() => undefined);
      expect(c.received()).toMatch(/^HTTP\/1\.1 401 /);
      expect(ends).toEqual([expect.objectContaining({ outcome: 'time', mode: 'close' })]);
    } finally {
      await short.close();
    }
  });

  it('FU-01: a server that stalls (a busy machine) does not mistake its own stall for the client pausing: the client goes on sending, no reset', async () => {
    let ended: (linger: LingerOutcome) => void = () => undefined;
    const lingerEnd = new Promise<LingerOutcome>((resolve) => (ended = resolve));
    const busy = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUSTED_PROXIES: '' }));
    await busy.register(connectionsPlugin, { lingeringTimeoutMs: 300, onLingerEnd: (l) => ended(l) });
    busy.post('/private', { onRequest: async () => Promise.reject(new Unauthorized('Sign in first')) }, async () => ({ ok: true }));
    await busy.listen({ host: '127.0.0.1', port: 0 });
    try {
      const c = converse((busy.server.address() as AddressInfo).port);
      c.socket.write(post('/private', 'chunked'));
      expect(await c.answers(1)).toMatch(/^HTTP\/1\.1 401 /);
      // The client's next bytes reach the kernel, then the whole process (the server with it) stalls
      // for longer than the pause limit: when it wakes, the bytes are waiting to be read.
      c.socket.write(CHUNK);
      const until = performance.now() + 900;
      while (performance.now() < until) {
        /* a stalled event loop */
      }
      const sent = await sendUntil(c.socket, CHUNK, (n) => n >= 4 * MiB);
      expect(sent).toBeGreaterThanOrEqual(4 * MiB);
      c.socket.write('0\r\n\r\n');
      expect(await lingerEnd).toEqual(expect.objectContaining({ outcome: 'complete', mode: 'close' }));
      c.socket.destroy();
    } finally {
      await busy.close();
    }
  });

  it('a lingering close ends as soon as the client has sent its whole body, and says so', async () => {
    let ended: (linger: LingerOutcome) => void = () => undefined;
    const lingerEnd = new Promise<LingerOutcome>((resolve) => (ended = resolve));
    const quick = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUSTED_PROXIES: '' }));
    await quick.register(connectionsPlugin, { onLingerEnd: (l) => ended(l) });
    quick.post('/private', { onRequest: async () => Promise.reject(new Unauthorized('Sign in first')) }, async () => ({ ok: true }));
    await quick.listen({ host: '127.0.0.1', port: 0 });
    try {
      const c = converse((quick.server.address() as AddressInfo).port);
      c.socket.write(post('/private', 4 * MiB));
      await writeBytes(c.socket, 4 * MiB);
      expect(await lingerEnd).toEqual(expect.objectContaining({ outcome: 'complete', mode: 'close', bytes: expect.any(Number) }));
      expect(await c.ended).toBe('end');
      expect(c.received()).toMatch(/^HTTP\/1\.1 401 /);
      c.socket.destroy();
    } finally {
      await quick.close();
    }
  });

  it('a body read to the end leaves nothing to do: keep-alive as usual', async () => {
    const c = converse();
    c.socket.write(post('/echo', 2 * MiB));
    await writeBytes(c.socket, 2 * MiB);
    c.socket.write(GET_OK);
    const text = await c.answers(2);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK[^]*\{"bytes":2097152\}/);
    expect(text).toMatch(/\{"ok":true\}$/);
    c.socket.destroy();
  });
});

describe('FX-02: timeouts', () => {
  const apps: FastifyInstance[] = [];
  afterAll(async () => Promise.all(apps.map((a) => a.close())));

  /** A server with the given timeouts; Node checks request timeouts every 30 s by default, here every 100 ms. */
  const serverWith = async (timeouts: { requestTimeout: number; connectionTimeout: number }) => {
    const slow = Fastify({ ...serverOptions({ LOG_LEVEL: 'silent', TRUSTED_PROXIES: '' }), ...timeouts, http: { connectionsCheckingInterval: 100 } } as FastifyHttpOptions<Server>);
    apps.push(slow);
    await slow.register(connectionsPlugin);
    await slow.register(errorHandlerPlugin);
    slow.post('/echo', async (request) => ({ got: request.body }));
    // The server's own work on a request that arrived whole (an upload still streaming to S3 under load).
    slow.post('/work', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      return { stored: true };
    });
    await slow.listen({ host: '127.0.0.1', port: 0 });
    return slow;
  };

  const stalled = async (server: FastifyInstance, trickle: boolean) => {
    const socket = connect((server.server.address() as AddressInfo).port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('error', () => undefined);
    socket.write('POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":');
    const timer = trickle ? setInterval(() => socket.write(' '), 200) : undefined;
    await once(socket, 'close');
    clearInterval(timer);
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown> };
  };

  it('the request timeout applies to a body that trickles in (Node alone would wait for its 60 s headers timeout): 408 REQUEST_TIMEOUT', async () => {
    const server = await serverWith({ requestTimeout: 1_000, connectionTimeout: 30_000 });
    expect(server.server.headersTimeout).toBe(1_000);
    expect(await stalled(server, true)).toEqual({ status: 408, body: expect.objectContaining({ statusCode: 408, code: 'REQUEST_TIMEOUT' }) });
  });

  it('a body that stops arriving for the connection timeout gets 408 REQUEST_TIMEOUT, not a silent close', async () => {
    const server = await serverWith({ requestTimeout: 30_000, connectionTimeout: 1_000 });
    expect(await stalled(server, false)).toEqual({ status: 408, body: expect.objectContaining({ statusCode: 408, code: 'REQUEST_TIMEOUT' }) });
  });

  it('a request that arrived whole is answered when the server is done, however long past the connection timeout (no 408 for work that succeeds)', async () => {
    const server = await serverWith({ requestTimeout: 30_000, connectionTimeout: 500 });
    const res = await fetch(`http://127.0.0.1:${(server.server.address() as AddressInfo).port}/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ stored: true });
  });
});

describe('requests refused by the HTTP parser or the router answer in the product error shape', () => {
  const exchange = async (raw: string) => {
    const c = converse();
    c.socket.write(raw);
    await c.ended.catch(() => undefined);
    const text = c.received();
    const head = text.split('\r\n\r\n')[0] ?? '';
    const body = text.slice(head.length + 4);
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), head, body: body ? (JSON.parse(body) as Record<string, unknown>) : undefined };
  };

  it.each([
    ['headers too large (431)', `GET /ok HTTP/1.1\r\nHost: test\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ['a malformed request line', 'GARBAGE\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['an unknown method token', 'FOO /ok HTTP/1.1\r\nHost: test\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['a non-numeric Content-Length', 'POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['Content-Length with Transfer-Encoding (request smuggling)', 'POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['malformed percent-encoding in the path', 'GET /files/%ZZ HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n', 400, 'BAD_URL'],
    ['invalid UTF-8 in the path', 'GET /files/%C0%AF HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n', 400, 'BAD_URL'],
    ['a path parameter over the router limit', `GET /files/${'a'.repeat(500)} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n`, 414, 'URL_TOO_LONG'],
    ['an HTTP/1.1 request without Host', 'GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'MISSING_HOST'],
    ['an Expect other than 100-continue', 'GET /ok HTTP/1.1\r\nHost: test\r\nExpect: teapot\r\n\r\n', 417, 'EXPECTATION_FAILED'],
  ])('%s', async (_what, raw, status, code) => {
    const res = await exchange(raw);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ statusCode: status, code, error: expect.any(String), message: expect.any(String) });
    expect(res.head).toMatch(/content-type: application\/json/i);
  });

  it('HTTP/1.0 without Host is fine (Host is an HTTP/1.1 requirement)', async () => {
    const res = await exchange('GET /ok HTTP/1.0\r\n\r\n');
    expect(res.status).toBe(200);
  });
});
