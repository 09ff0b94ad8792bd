import type { FastifyHttpOptions, FastifyServerOptions } from 'fastify';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { splitList } from './config';
import { loggerOptions } from './logger';
import { answerClientError, answerFrameworkError } from './plugins/connections';

export interface HttpSettings {
  LOG_LEVEL: string;
  TRUSTED_PROXIES: string;
}

/**
 * Fastify options every service starts from: timeouts that fit behind the ALB (idle timeout 60 s,
 * so keep-alive is longer: FX-02), only the configured proxies trusted for X-Forwarded-For
 * (AU-06), 503 while closing, our own request ids, strict JSON, and requests the HTTP parser or
 * the router refuse (431, 400 malformed, 408, undecodable path) answered in the product's error
 * shape. Every server also registers `connectionsPlugin`.
 */
export function serverOptions(
  settings: HttpSettings,
  overrides: Partial<FastifyServerOptions> & { prettyLogs?: boolean } = {},
): FastifyHttpOptions<Server> {
  const { prettyLogs, ...rest } = overrides;
  return {
    logger: loggerOptions(settings.LOG_LEVEL, { pretty: prettyLogs ?? false }),
    trustProxy: splitList(settings.TRUSTED_PROXIES),
    connectionTimeout: 10_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    bodyLimit: 64 * 1024,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    // connectionsPlugin refuses a missing Host in the product's error shape (Node's answer has no body).
    http: { requireHostHeader: false },
    ...rest,
  };
}
