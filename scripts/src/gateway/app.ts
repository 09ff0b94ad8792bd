import httpProxy from '@fastify/http-proxy';
import { errorHandlerPlugin, loggerOptions, portProperty } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';

export const GatewayConfig = Type.Object({
  GATEWAY_PORT: portProperty(8080),
  HOST: Type.String({ default: '127.0.0.1' }),
  AUTH_URL: Type.String({ default: 'http://127.0.0.1:3001', pattern: '^https?://' }),
  UPLOAD_URL: Type.String({ default: 'http://127.0.0.1:3002', pattern: '^https?://' }),
  BACKUP_URL: Type.String({ default: 'http://127.0.0.1:3003', pattern: '^https?://' }),
  LOG_LEVEL: Type.String({ default: 'info' }),
});
export type GatewayConfig = Static<typeof GatewayConfig>;

/**
 * The development gateway: the ALB listener's path rules in front of the local services.
 * `/auth/*` -> auth, `/api/files*` -> upload, `/api/backup/*` -> backup-sync, everything else ->
 * upload (the UI). Bodies stream through untouched (no size limit here: the services enforce
 * theirs), paths are not rewritten, and the client address is passed in X-Forwarded-For.
 */
export async function buildGateway(config: GatewayConfig, fastify: Partial<FastifyServerOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config.LOG_LEVEL),
    // Long uploads pass through; the services apply their own timeouts.
    requestTimeout: 0,
    connectionTimeout: 10_000,
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    ...fastify,
  });
  await app.register(errorHandlerPlugin);

  const upstreamOptions = {
    http: { requestOptions: { timeout: 0 } },
    // X-Forwarded-For: the address of the socket that reached the gateway (the ALB does the same).
    replyOptions: {
      rewriteRequestHeaders: (request: { raw: { socket?: { remoteAddress?: string } }; headers: IncomingHttpHeaders }, headers: IncomingHttpHeaders) => ({
        ...headers,
        'x-forwarded-for': request.raw.socket?.remoteAddress ?? '',
        'x-forwarded-host': request.headers.host ?? '',
        'x-forwarded-proto': 'http',
      }),
    },
  };
  const route = (prefix: string, upstream: string) =>
    app.register(httpProxy, { upstream, prefix, rewritePrefix: prefix, ...upstreamOptions });

  // Every request that reaches an upstream keeps its exact path; @fastify/http-proxy matches
  // by prefix, and the ALB rule `/api/files*` also covers `/api/files-anything`.
  await route('/auth', config.AUTH_URL);
  await route('/api/backup', config.BACKUP_URL);
  await route('/api/files', config.UPLOAD_URL);
  await app.register(httpProxy, { upstream: config.UPLOAD_URL, prefix: '/', ...upstreamOptions });

  return app;
}
