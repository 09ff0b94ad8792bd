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
  /** Longest time, in ms, spent reading and throwing away the rest of a kept connection's body. Default 5000. */
  discardTimeoutMs?: number;
  /**
   * Lingering close, total time (nginx's `lingering_time`): the longest time, in ms, a closing
   * connection goes on reading and throwing away what the client still sends after its answer.
   * Past it the connection is reset. Default 30000.
   */
  lingeringTimeMs?: number;
  /**
   * Lingering close, pause (nginx's `lingering_timeout`): a closing connection whose client sends
   * nothing for this many ms is closed, the client having stopped to read its answer. Default 5000.
   */
  lingeringTimeoutMs?: number;
  /** Told how each lingering close or drain ended (for logs and measurements). */
  onLingerEnd?: (linger: LingerOutcome) => void;
}

/**
 * How the rest of an answered request's body was dealt with: `complete` (the client sent all it
 * declared, or ended its side), `paused` (it stopped sending for the pause limit), `time` (still
 * sending at the total limit: reset), `bytes` (a kept connection's rest over its size: reset),
 * `closed` (the client closed the connection).
 */
export interface LingerOutcome {
  outcome: 'complete' | 'paused' | 'time' | 'bytes' | 'closed';
  /** `close`: a lingering close after `Connection: close`; `drain`: a kept-alive connection's rest read. */
  mode: 'close' | 'drain';
  /** Body bytes read and thrown away after the answer began. */
  bytes: number;
  /** How long it took, in ms. */
  ms: number;
}

const MiB = 1024 * 1024;
/** nginx's defaults for a lingering close (30 s in all, 5 s of pause); a kept connection reads at most 1 MiB within 5 s. */
const DEFAULTS = { drainMaxBytes: MiB, discardTimeoutMs: 5_000, lingeringTimeMs: 30_000, lingeringTimeoutMs: 5_000 };

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

interface DiscardLimits {
  mode: LingerOutcome['mode'];
  /** Most bytes read (a kept connection's rest); past it the connection is reset. */
  maxBytes: number;
  /** Total time, in ms; past it the connection is reset. */
  totalMs: number;
  /** Longest pause between two reads, in ms; past it the connection is closed. */
  pauseMs: number;
  onEnd?: (linger: LingerOutcome) => void;
}

/**
 * Reads and throws away what is left of `req`'s body while and after its answer is sent, within
 * the limits; past `totalMs` or `maxBytes` the connection is reset, after a pause of `pauseMs` it
 * is closed. In `close` mode the answer says `Connection: close`: once both the answer and the
 * whole body have gone through, the socket is closed.
 */
function discardRest(req: IncomingMessage, res: ServerResponse, limits: DiscardLimits): void {
  const socket = req.socket;
  discarding.add(socket);
  const started = performance.now();
  let bytes = 0;
  let bodyDone = false;
  let answered = false;
  let ended = false;
  const end = (outcome: LingerOutcome['outcome']) => {
    if (ended) return;
    ended = true;
    clearTimeout(total);
    clearTimeout(pause);
    discarding.delete(socket);
    limits.onEnd?.({ outcome, mode: limits.mode, bytes, ms: performance.now() - started });
  };
  const cut = (outcome: 'time' | 'bytes' | 'paused') => {
    end(outcome);
    socket.destroy();
  };
  const total = setTimeout(() => cut('time'), limits.totalMs);
  total.unref();
  // A pause is the client's only if nothing is waiting to be read: after the server's own event
  // loop stalled (a busy machine), timers run before sockets are read, so the decision waits for
  // one pass of the I/O phase (setImmediate), whose reads refresh `lastData`.
  let lastData = performance.now();
  const pause = setTimeout(function paused() {
    setImmediate(() => {
      if (ended) return;
      const idle = performance.now() - lastData;
      if (idle >= limits.pauseMs) cut('paused');
      else pause.refresh();
    });
  }, limits.pauseMs);
  pause.unref();
  const settle = () => {
    if (!bodyDone || !answered) return;
    end('complete');
    // Node's own destroySoon: destroy once the answer and the FIN have been handed to the kernel.
    if (limits.mode === 'close') Socket.prototype.destroySoon.call(socket);
  };
  // Whoever was reading (a multipart parser, a proxy) stopped at the answer: detach it and read on.
  // Reading here (rather than leaving it to Node, which drops a body it "dumps" unseen) counts the bytes.
  req.unpipe();
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limits.maxBytes) return cut('bytes');
    lastData = performance.now();
    pause.refresh();
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
  socket.once('close', () => end('closed'));
  req.resume();
}

/**
 * Called for an answer about to be sent: when part of the request body is still unread, the
 * connection is either kept (a small rest is read and thrown away after the answer) or closed
 * with `Connection: close` and a lingering close, as nginx does it: FIN after the answer, then
 * what the client still sends is read and thrown away for as long as it keeps sending, up to
 * `lingeringTimeMs` in all, and the connection is closed once the client pauses for
 * `lingeringTimeoutMs`. A client busy sending reads its answer only when it gets to it; closing
 * earlier would make the kernel answer its next bytes with a reset, which can destroy the answer
 * before it is read (a browser then shows "connection reset", not "file too large"). So the
 * client reads the answer, and a pooled connection never carries a stale body into the next request.
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
    // is still sending would then make the kernel reset the connection. Half-close instead;
    // `discardRest` closes it later.
    socket.destroySoon = function lingeringClose(this: Socket) {
      if (this.writable) this.end();
    };
  }
  // A client cut off while still sending may have lost its answer: worth an info line; the rest is routine.
  const onEnd =
    options.onLingerEnd ??
    ((linger: LingerOutcome) => request.log[linger.outcome === 'time' || linger.outcome === 'bytes' ? 'info' : 'debug']({ linger }, 'unread request body settled'));
  discardRest(
    req,
    reply.raw,
    keepAlive
      ? { mode: 'drain', maxBytes: limits.drainMaxBytes, totalMs: limits.discardTimeoutMs, pauseMs: limits.discardTimeoutMs, onEnd }
      : { mode: 'close', maxBytes: Number.POSITIVE_INFINITY, totalMs: limits.lingeringTimeMs, pauseMs: limits.lingeringTimeoutMs, onEnd },
  );
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
