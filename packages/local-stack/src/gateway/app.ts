import { baseConfigProperties, connectionsPlugin, errorBody, errorHandlerPlugin, portProperty, serverOptions } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { Agent, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';

const upstreamUrl = (port: number) => Type.String({ default: `http://127.0.0.1:${port}`, pattern: '^https?://[^/\\s]+$' });

/** The dev gateway's settings; every key is the environment variable of the same name. */
export const GatewayConfig = Type.Object({
  GATEWAY_PORT: portProperty(8080),
  /** 0.0.0.0 as every server (containers); `npm start` passes its STACK_HOST (127.0.0.1). */
  HOST: baseConfigProperties.HOST,
  AUTH_URL: upstreamUrl(3001),
  UPLOAD_URL: upstreamUrl(3002),
  BACKUP_URL: upstreamUrl(3003),
  /** Longest wait for an upstream's response headers, or between two chunks of a body, in ms. */
  PROXY_TIMEOUT_MS: Type.Integer({ default: 600_000, minimum: 1_000 }),
  LOG_LEVEL: baseConfigProperties.LOG_LEVEL,
  TRUSTED_PROXIES: baseConfigProperties.TRUSTED_PROXIES,
  SHUTDOWN_GRACE_MS: baseConfigProperties.SHUTDOWN_GRACE_MS,
});
export type GatewayConfig = Static<typeof GatewayConfig>;

export type Upstream = 'auth' | 'upload' | 'backup-sync';

/**
 * The ALB listener's rules (terraform), in priority order. Patterns are ALB path patterns: matched
 * against the path only (no query string), case-sensitive, `*` = any characters including `/`,
 * `?` = one character. A request no rule matches goes to the default action: upload (the UI).
 */
export const PATH_RULES: readonly { pattern: string; upstream: Upstream }[] = [
  { pattern: '/auth/*', upstream: 'auth' },
  { pattern: '/api/files*', upstream: 'upload' },
  { pattern: '/api/backup/*', upstream: 'backup-sync' },
];
export const DEFAULT_UPSTREAM: Upstream = 'upload';

/**
 * Paths the ALB answers itself with 404 and never forwards: each service's Prometheus endpoint
 * is for the scraper on the service's own port only. Matched like `PATH_RULES`, on the path after
 * percent-decoding (the services' router decodes `/%6detrics` to `/metrics` too).
 */
export const PRIVATE_PATHS: readonly string[] = ['/metrics', '/metrics/*'];

const toRegExp = (pattern: string) =>
  new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
const COMPILED_RULES = PATH_RULES.map((rule) => ({ ...rule, regexp: toRegExp(rule.pattern) }));
const PRIVATE_REGEXPS = PRIVATE_PATHS.map(toRegExp);

/** True when `url` (path, with or without query) is one of `PRIVATE_PATHS`, however it is percent-encoded. */
export function isPrivatePath(url: string): boolean {
  const path = url.split('?', 1)[0] ?? '';
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // Not decodable: the services refuse it as a bad URL; the raw form is checked below.
  }
  return PRIVATE_REGEXPS.some((regexp) => regexp.test(path) || regexp.test(decoded));
}

/** Which service the ALB would send a request for `url` (path, with or without query) to. */
export function upstreamFor(url: string): Upstream {
  const path = url.split('?', 1)[0] ?? '';
  return COMPILED_RULES.find((rule) => rule.regexp.test(path))?.upstream ?? DEFAULT_UPSTREAM;
}

function sendError(reply: FastifyReply, statusCode: number, code: string, message: string): void {
  if (statusCode === 503) reply.header('retry-after', '5');
  void reply.code(statusCode).send(errorBody(statusCode, code, message));
}

/**
 * Hop-by-hop headers describe one connection (client <-> gateway, gateway <-> upstream) and are
 * not passed on (RFC 9110 7.6.1), in either direction; nor is `Expect`: the gateway answers
 * `100 Continue` itself and sends the body on to the upstream directly.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect'];

function withoutHopByHop<T extends Record<string, unknown>>(headers: T): T {
  const copy = { ...headers };
  const listed = typeof copy.connection === 'string' ? copy.connection.split(',').map((name) => name.trim().toLowerCase()) : [];
  for (const name of [...HOP_BY_HOP, ...listed]) delete copy[name];
  return copy;
}

/**
 * The request body as the stream handed to the upstream client. It is a separate stream so that
 * an upstream answering early (and the HTTP client then dropping the body) never destroys the
 * client's own request, whose connection must stay able to carry that answer back
 * (`connectionsPlugin` deals with the unread rest).
 */
function forwardableBody(raw: IncomingMessage): PassThrough {
  const body = new PassThrough();
  raw.pipe(body);
  return body;
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECT_TIMEOUT']);
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The development gateway, standing in for the ALB: its path rules in front of the local services
 * (`PATH_RULES`), bodies streamed both ways without a size limit or buffering (the services enforce
 * their own limits), the request target forwarded byte for byte (never re-normalised), status codes
 * and headers (Set-Cookie, Location) passed through unchanged, and the Host header kept, as the ALB
 * does. X-Forwarded-For is set to the address of the socket that reached the gateway, replacing
 * whatever the client sent. `GET /health` is the gateway's own; `PRIVATE_PATHS` answer 404.
 *
 * An upstream's early answer (401 before the body, 413, 415...) reaches the client as that answer:
 * the rest of the body is no longer sent upstream (that connection is then closed, never reused),
 * and the client's connection is drained or closed (`connectionsPlugin`), never reset. It forwards
 * with `node:http` on a keep-alive agent: undici (and so @fastify/reply-from) refuses `Expect`,
 * destroys the client's request stream when an upstream answers early, and reply-from rebuilds the
 * path through the WHATWG URL parser (which rewrites `\` and dot segments). The factory never listens.
 */
export async function buildGateway(config: GatewayConfig, fastify: Partial<FastifyServerOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...serverOptions(config),
    // Uploads of several GB take as long as they take; the services apply their own limits.
    requestTimeout: 0,
    connectionTimeout: config.PROXY_TIMEOUT_MS,
    ...fastify,
  });
  await app.register(connectionsPlugin);
  await app.register(errorHandlerPlugin);

  const upstreams: Record<Upstream, URL> = { auth: new URL(config.AUTH_URL), upload: new URL(config.UPLOAD_URL), 'backup-sync': new URL(config.BACKUP_URL) };
  // Idle pooled connections are dropped after 30 s, well before the services' keep-alive timeout (65 s).
  const agentOptions = { keepAlive: true, maxSockets: 128, maxFreeSockets: 32, timeout: 30_000, scheduling: 'lifo' as const };
  const agents = { 'http:': new Agent(agentOptions), 'https:': new HttpsAgent(agentOptions) };
  app.addHook('onClose', async () => {
    agents['http:'].destroy();
    agents['https:'].destroy();
  });

  // Bodies are not parsed here: every request body is streamed to the upstream as it arrives.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, _payload, done) => done(null, forwardableBody(request.raw)));

  app.get('/health', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  /**
   * What the ALB adds: the client's address and the original scheme and port; the Host header is
   * kept. A body the gateway does not forward (GET, HEAD) is not announced to the upstream.
   */
  const forwardedHeaders = (request: FastifyRequest, upstream: URL): IncomingHttpHeaders => {
    const forwarded: IncomingHttpHeaders = {
      ...withoutHopByHop(request.headers),
      host: request.headers.host ?? upstream.host,
      'x-forwarded-for': request.socket.remoteAddress ?? '',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': String(request.socket.localPort ?? config.GATEWAY_PORT),
    };
    if (!(request.body instanceof PassThrough)) delete forwarded['content-length'];
    return forwarded;
  };

  const proxy = (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.url.startsWith('/')) return sendError(reply, 400, 'BAD_REQUEST', 'The request target must be a path');
    if (isPrivatePath(request.url)) return sendError(reply, 404, 'NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`);
    const name = upstreamFor(request.url);
    const upstream = upstreams[name];
    const body = request.body instanceof PassThrough ? request.body : undefined;

    // Resolves with the reply once an answer has been handed to it (Fastify then leaves it alone).
    return new Promise<FastifyReply>((settled) => {
      let answered = false;
      const failed = (err: NodeJS.ErrnoException) => {
        if (answered) return;
        answered = true;
        settled(reply);
        if (request.raw.destroyed && !request.raw.complete) {
          // Nobody is left to read an answer; one is still sent so the request's lifecycle ends.
          request.log.info({ upstream: name }, 'the client went away before its request was complete');
          return sendError(reply, 400, 'CLIENT_CLOSED_REQUEST', 'The client closed the connection before the request was complete');
        }
        request.log.warn({ err, upstream: name }, 'proxying failed');
        if (err.code && CONNECT_FAILURES.has(err.code)) {
          return sendError(reply, 503, 'UPSTREAM_UNAVAILABLE', `The ${name} service is not reachable; please retry shortly`);
        }
        if (err.code === 'ETIMEDOUT') return sendError(reply, 504, 'UPSTREAM_TIMEOUT', `The ${name} service did not answer in time`);
        return sendError(reply, 502, 'BAD_GATEWAY', `The ${name} service closed the connection or sent an invalid response`);
      };

      const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
      const outgoing = send({
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: request.method,
        // The request target exactly as the client sent it: the upstream routes on the same bytes.
        path: request.url,
        headers: forwardedHeaders(request, upstream),
        agent: agents[upstream.protocol as 'http:' | 'https:'],
      });
      outgoing.on('socket', (socket: Socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => outgoing.destroy(Object.assign(new Error('connecting timed out'), { code: 'ECONNECT_TIMEOUT' })), CONNECT_TIMEOUT_MS);
        const clear = () => clearTimeout(timer);
        socket.once('connect', clear);
        socket.once('close', clear);
      });
      outgoing.setTimeout(config.PROXY_TIMEOUT_MS, () => outgoing.destroy(Object.assign(new Error('the upstream did not answer in time'), { code: 'ETIMEDOUT' })));
      outgoing.on('error', failed);
      outgoing.on('response', (res) => {
        answered = true;
        if (body && !outgoing.writableEnded) {
          // An early answer: the upstream does not want the rest of the body. This connection is
          // dropped once the answer has been read (it cannot be reused mid-body).
          body.unpipe(outgoing);
          res.once('end', () => outgoing.destroy());
        }
        settled(reply.code(res.statusCode ?? 502).headers(withoutHopByHop(res.headers)).send(res));
      });
      // The answer is out or the client went away (FU-14): the upstream gets no more body, and an
      // upstream request still unanswered or mid-body is aborted, so nothing there waits for bytes
      // that never come.
      reply.raw.once('close', () => {
        body?.destroy();
        if (!answered || !outgoing.writableEnded) outgoing.destroy();
      });
      if (body) body.pipe(outgoing);
      else outgoing.end();
    });
  };
  app.all('/', proxy);
  app.all('/*', proxy);
  return app;
}
