import type { FastifyServerOptions } from 'fastify';
import { randomUUID } from 'node:crypto';
import { splitList } from './config';
import { loggerOptions } from './logger';

export interface HttpSettings {
  LOG_LEVEL: string;
  TRUSTED_PROXIES: string;
}

/**
 * Fastify options every service starts from: timeouts that fit behind the ALB (idle timeout 60 s,
 * so keep-alive is longer: FX-02), only the configured proxies trusted for X-Forwarded-For
 * (AU-06), 503 while closing, our own request ids, strict JSON.
 */
export function serverOptions(
  settings: HttpSettings,
  overrides: Partial<FastifyServerOptions> & { prettyLogs?: boolean } = {},
): FastifyServerOptions {
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
    ...rest,
  };
}
