import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { RequestTimedOut, RequestTooSlow } from '../errors';
import { hasUnreadBody } from './connections';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route reads a long body as a stream (an upload): instead of the short body deadline, its
     * body must keep arriving at the minimum rate; `request.bodyTooSlow` aborts when it does not.
     */
    longBody?: boolean;
  }
  interface FastifyRequest {
    /**
     * On a `longBody` route: aborted (reason: 408 REQUEST_TOO_SLOW) when the body arrives slower
     * than the minimum rate. The route's reader stops on it and answers with the reason.
     */
    bodyTooSlow: AbortSignal;
  }
}

export interface BodyRateOptions {
  /** Bytes per second a long body must keep arriving at, averaged over `windowMs`; 0: no minimum. */
  minBytesPerSecond: number;
  /** The sliding window, in ms, over which the rate is measured. */
  windowMs: number;
  /** Time after the request arrived, in ms, before the rate is judged (a connection warming up). */
  graceMs: number;
  /** Time, in ms, the whole body of any other route may take to arrive (408 REQUEST_TIMEOUT). */
  bodyTimeoutMs: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

interface Watched {
  request: FastifyRequest;
  answered: () => boolean;
  abort: AbortController;
  since: number;
  /** (time, socket bytes read) while the server was waiting for the client; oldest first. */
  samples: { at: number; bytes: number }[];
}

/** Bytes the connection has read so far, or undefined when it is not a real socket (app.inject). */
function bytesRead(req: IncomingMessage): number | undefined {
  const n = (req.socket as { bytesRead?: unknown } | undefined)?.bytesRead;
  return typeof n === 'number' ? n : undefined;
}

/**
 * Slow request bodies (slowloris on the body): one request timeout for every route would let an
 * upload that sends a byte every few seconds hold a connection, a handler and a quota reservation
 * for as long as an honest large upload may take.
 *
 * - A `longBody` route (an upload, read as a stream) must keep receiving at least
 *   `minBytesPerSecond`, measured over a sliding `windowMs` once `graceMs` have passed since the
 *   request arrived. Only time the server spends waiting for the client counts: while the server
 *   is not reading the body (its own back-pressure: a full part queue waiting for S3, a quota
 *   check before the body is read), the window starts again. Too slow: `request.bodyTooSlow`
 *   aborts with 408 `REQUEST_TOO_SLOW`, and the route cleans up as for any aborted upload.
 * - Every other route's body (a JSON body) must arrive whole within `bodyTimeoutMs`, or the
 *   request is answered 408 `REQUEST_TIMEOUT` without waiting for the rest of it.
 *
 * The rest of a body left unread by these answers is handled by `connectionsPlugin` (read and
 * thrown away for a bounded time, or the connection closed).
 */
export const bodyRatePlugin = fp<BodyRateOptions>(
  async function bodyRate(app: FastifyInstance, opts) {
    const now = opts.now ?? Date.now;
    const watched = new Set<Watched>();
    const tickMs = Math.max(50, Math.min(1_000, Math.floor(opts.windowMs / 4)));
    let timer: NodeJS.Timeout | undefined;

    const check = (w: Watched) => {
      const req = w.request.raw;
      const bytes = bytesRead(req);
      // Done, or answered already (what is left of the body is connectionsPlugin's to throw away).
      if (bytes === undefined || req.complete || req.destroyed || w.request.raw.socket?.destroyed || w.answered()) return void watched.delete(w);
      const at = now();
      // The server's turn (not reading yet, or paused by back-pressure): nothing to judge.
      if (req.readableFlowing !== true || req.readableLength > 0) {
        w.samples = [];
        return;
      }
      w.samples.push({ at, bytes });
      while (w.samples.length > 1 && (w.samples[1]?.at ?? at) <= at - opts.windowMs) w.samples.shift();
      const first = w.samples[0] as { at: number; bytes: number };
      if (at - w.since < opts.graceMs || at - first.at < opts.windowMs) return;
      const rate = ((bytes - first.bytes) * 1000) / (at - first.at);
      if (rate >= opts.minBytesPerSecond) return;
      watched.delete(w);
      w.request.log.info({ rate: Math.round(rate), minBytesPerSecond: opts.minBytesPerSecond }, 'request body too slow: stopped');
      w.abort.abort(
        new RequestTooSlow(`The upload arrived slower than ${opts.minBytesPerSecond} bytes per second: check the connection and try again`),
      );
    };
    const tick = () => {
      for (const w of watched) check(w);
      if (watched.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
      }
    };

    // Fastify wants an object decoration declared as null (one object would be shared by every
    // request); the cast stays because onRequest below gives each request its own signal first.
    app.decorateRequest('bodyTooSlow', null as unknown as AbortSignal);
    app.addHook('onRequest', async (request, reply) => {
      const abort = new AbortController();
      request.bodyTooSlow = abort.signal;
      if (!request.routeOptions.config.longBody || opts.minBytesPerSecond <= 0 || !hasUnreadBody(request.raw)) return;
      const w: Watched = { request, answered: () => reply.sent, since: now(), abort, samples: [] };
      watched.add(w);
      const forget = () => watched.delete(w);
      request.raw.once('end', forget);
      request.raw.once('close', forget);
      timer ??= setInterval(tick, tickMs).unref();
    });

    app.addHook('preParsing', async (request, reply, payload) => {
      if (request.routeOptions.config.longBody || !hasUnreadBody(request.raw)) return payload;
      // The body goes through a stream this plugin can fail: Fastify's body reader then answers
      // with the error, and the raw request (detached) is left to connectionsPlugin.
      const body = new PassThrough();
      const deadline = setTimeout(() => {
        (payload as Readable).unpipe(body);
        // Nobody reads the body once an answer went out early (a 401, a 415): just let it go.
        if (reply.sent || body.listenerCount('error') === 0) return void body.destroy();
        body.destroy(new RequestTimedOut(`The request body did not arrive within ${Math.round(opts.bodyTimeoutMs / 1000)} s`));
      }, opts.bodyTimeoutMs);
      deadline.unref();
      const stop = () => clearTimeout(deadline);
      body.once('end', stop);
      body.once('close', stop);
      reply.raw.once('close', stop);
      (payload as Readable).pipe(body);
      return body;
    });

    app.addHook('onClose', async () => {
      if (timer) clearInterval(timer);
      watched.clear();
    });
  },
  { name: 'scs-body-rate', fastify: '5.x', dependencies: ['scs-connections'] },
);
