import createError from '@fastify/error';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { Socket } from 'node:net';
import { errorBody } from './error-handler';

export interface ConnectionsOptions {
  /**
   * A request answered before its body was read keeps its connection when it declared at most
   * this many body bytes: the rest is read and thrown away. Larger (or chunked) bodies close it.
   * Default 1 MiB.
   */
  drainMaxBytes?: number;
  /** Longest time, in ms, spent reading and throwing away the rest of a body. Default 5000. */
  discardTimeoutMs?: number;
  /** Most bytes thrown away while closing a connection (after that it is reset). Default 32 MiB. */
  lingerMaxBytes?: number;
}

const MiB = 1024 * 1024;
const DEFAULTS: Required<ConnectionsOptions> = { drainMaxBytes: MiB, discardTimeoutMs: 5_000, lingerMaxBytes: 32 * MiB };

/** Sockets whose request body is being thrown away after the answer was sent. */
const discarding = new WeakSet<Socket>();

/** True while a connection is throwing away the rest of a body it already answered (no more answers on it). */
export function isDiscardingBody(socket: Socket): boolean {
  return discarding.has(socket);
}

/** True while part of the request's body is still on the wire (or on its way). */
export function hasUnreadBody(req: IncomingMessage): boolean {
  if (!(req.socket instanceof Socket) || req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Reads and throws away what is left of `req`'s body while and after its answer is sent, within
 * `maxBytes` and `timeoutMs`; past either, the connection is destroyed. With `close`, the answer
 * says `Connection: close`: once both the answer and the whole body have gone through, the socket
 * is closed.
 */
function discardRest(req: IncomingMessage, res: ServerResponse, opts: { maxBytes: number; timeoutMs: number; close: boolean }): void {
  const socket = req.socket;
  discarding.add(socket);
  let bytes = 0;
  let bodyDone = false;
  let answered = false;
  const timer = setTimeout(() => socket.destroy(), opts.timeoutMs);
  timer.unref();
  const stop = () => {
    clearTimeout(timer);
    discarding.delete(socket);
  };
  const settle = () => {
    if (!bodyDone || !answered) return;
    stop();
    // Node's own destroySoon: destroy once the answer and the FIN have been handed to the kernel.
    if (opts.close) Socket.prototype.destroySoon.call(socket);
  };
  // Whoever was reading (a multipart parser, a proxy) stopped at the answer: detach it and read on.
  // Reading here (rather than leaving it to Node, which drops a body it "dumps" unseen) counts the bytes.
  req.unpipe();
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > opts.maxBytes) socket.destroy();
  });
  req.on('error', () => undefined);
  req.once('end', () => {
    bodyDone = true;
    settle();
  });
  res.once('finish', () => {
    answered = true;
    settle();
  });
  socket.once('close', stop);
  req.resume();
}

/**
 * Called for an answer about to be sent: when part of the request body is still unread, the
 * connection is either kept (a small rest is read and thrown away after the answer) or closed
 * with `Connection: close` and a lingering close (FIN after the answer, then what the client
 * still sends is read and thrown away for a bounded time), so the client reads the answer
 * instead of a reset and a pooled connection never carries a stale body into the next request.
 */
export function settleUnreadBody(request: FastifyRequest, reply: FastifyReply, options: ConnectionsOptions = {}): void {
  const req = request.raw;
  if (!hasUnreadBody(req)) return;
  const limits = { ...DEFAULTS, ...options };
  const socket = req.socket;
  const declared = Number(req.headers['content-length']);
  const keepAlive = req.headers['transfer-encoding'] === undefined && Number.isFinite(declared) && declared <= limits.drainMaxBytes;
  if (!keepAlive) {
    reply.header('connection', 'close');
    // Node destroys a `Connection: close` socket as soon as the answer is written; data the client
    // is still sending would then make the kernel reset the connection, which can discard the
    // answer before the client reads it. Half-close instead; `discardRest` closes it later.
    socket.destroySoon = function lingeringClose(this: Socket) {
      if (this.writable) this.end();
    };
  }
  discardRest(req, reply.raw, {
    maxBytes: keepAlive ? limits.drainMaxBytes : limits.lingerMaxBytes,
    timeoutMs: limits.discardTimeoutMs,
    close: !keepAlive,
  });
}

/** The answer Node is writing (or about to write) on this connection, if a request is in progress. */
function answerInFlight(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

const MissingHost = createError('MISSING_HOST', 'An HTTP/1.1 request needs a Host header', 400);

const answeredClientErrors = new WeakSet<Socket>();

const CLIENT_ERRORS: Record<string, [status: number, code: string, message: string]> = {
  HPE_HEADER_OVERFLOW: [431, 'HEADERS_TOO_LARGE', 'The request headers are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT', 'The request did not arrive in time'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'CHUNK_EXTENSIONS_TOO_LARGE', 'The chunk extensions of the request are too large'],
};

/**
 * The server's `clientError` listener (Fastify's `clientErrorHandler`): a request the HTTP parser
 * refuses (headers too large: 431, a malformed request line, header or body framing: 400, too
 * slow: 408) is answered in the product's error shape with a stable code, then the connection
 * closes. Nothing is written when an answer is already on its way on this connection.
 */
export function answerClientError(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || answeredClientErrors.has(socket)) return;
  answeredClientErrors.add(socket);
  if (isDiscardingBody(socket) || answerInFlight(socket)?.headersSent || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'MALFORMED_REQUEST', 'The request is not valid HTTP/1.1'];
  this.log.debug({ err, code }, 'malformed request refused');
  const body = JSON.stringify(errorBody(status, code, message));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/**
 * Fastify's `frameworkErrors`: a path the router cannot decode (malformed percent-encoding,
 * invalid UTF-8) or a path parameter over the router's length limit, answered in the product's
 * error shape with a stable code.
 */
export function answerFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const [status, code, message] =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? [414, 'URL_TOO_LONG', 'A part of the request path is too long']
      : err.code === 'FST_ERR_BAD_URL'
        ? [400, 'BAD_URL', 'The request path is not valid: malformed percent-encoding or invalid UTF-8']
        : [400, 'BAD_REQUEST', 'The request cannot be routed'];
  settleUnreadBody(request, reply);
  void reply.code(status).header('cache-control', 'no-store').send(errorBody(status, code, message));
}

/**
 * Connection hygiene every server (each service and the gateway) registers first:
 *
 * - An answer sent before the request body was read (401 in `onRequest`, 413 on the declared
 *   length, 415 from the first bytes, 429, a bad multipart part...) never leaves the rest of the
 *   body unread on a keep-alive connection, where it would stall the next request that reuses it
 *   (a pooled connection of the ALB or the gateway, serving another user): see `settleUnreadBody`.
 * - `Expect` values other than `100-continue` get 417, and an HTTP/1.1 request without a Host
 *   header 400 `MISSING_HOST` (RFC 9112 3.2), in the product's error shape.
 *
 * The server options that go with it (`serverOptions`): `answerClientError`, `answerFrameworkError`,
 * and Node's own Host check turned off (it answers with an empty body) in favour of the one here.
 */
export const connectionsPlugin = fp<ConnectionsOptions>(
  async function connections(app: FastifyInstance, opts) {
    // Fastify sets requestTimeout after creating the server, so Node's headersTimeout stays at its
    // 60 s default, and Node only times out a request whose body stalls after the longer of the
    // two: apply Node's own rule, headersTimeout = min(60 s, requestTimeout) (FX-02).
    const server = app.server;
    if (server.requestTimeout > 0 && server.headersTimeout > server.requestTimeout) server.headersTimeout = server.requestTimeout;

    // A connection idle past the connection timeout while its request waits for the rest of its
    // body gets 408 in the product's error shape before it is closed (Node would close it
    // silently, which a proxy can only report as 502); an idle keep-alive connection just closes.
    // A request that arrived whole is left alone: the quiet is the server's own work on it (an
    // upload still on its way to S3), and a 408 then would deny a request that still succeeds.
    server.on('timeout', (socket: Socket) => {
      const waiting = answerInFlight(socket);
      if (waiting && !waiting.headersSent && waiting.req.complete) return;
      if (waiting && !waiting.headersSent) answerClientError.call(app, Object.assign(new Error('connection idle too long'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
      else socket.destroy();
    });

    app.addHook('onRequest', async (request) => {
      if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) throw new MissingHost();
    });

    app.addHook('onSend', async (request, reply, payload) => {
      settleUnreadBody(request, reply, opts);
      return payload;
    });

    app.server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
      const body = JSON.stringify(errorBody(417, 'EXPECTATION_FAILED', 'Only "Expect: 100-continue" is supported'));
      res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
    });
  },
  { name: 'scs-connections', fastify: '5.x' },
);
