import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { STATUS_CODES } from 'node:http';
import { isDependencyOutage } from '../aws';
import { DEPENDENCY_RETRY_AFTER_SECONDS, FRAMEWORK_CODES, type RetryableError } from '../errors';

export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

/** The product's error shape: `{statusCode, code, error, message}` (`error` is the status text). */
export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}
const body = errorBody;

/**
 * The one error handler: Fastify's JSON shape with a stable `code`. 4xx carry their real message;
 * a dependency outage becomes 503 STORAGE_UNAVAILABLE with Retry-After; anything else is a 500
 * whose details go to the log only.
 */
export const errorHandlerPlugin = fp(
  async function errorHandler(app: FastifyInstance) {
    app.setErrorHandler((err: FastifyError & RetryableError, request, reply) => {
      const status = err.statusCode ?? 500;
      if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));

      if (err.validation) {
        return reply.status(400).send(body(400, 'VALIDATION_FAILED', err.message));
      }
      if (status >= 400 && status < 500) {
        const code = (err.code && FRAMEWORK_CODES[err.code]) ?? err.code ?? 'BAD_REQUEST';
        return reply.status(status).send(body(status, code, err.message));
      }
      // A 5xx the product raised on purpose (our own @fastify/error codes) keeps its code and message.
      const deliberate = err.name === 'FastifyError' && typeof err.code === 'string' && !err.code.startsWith('FST_');
      if (deliberate && status >= 500) {
        if (status === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(DEPENDENCY_RETRY_AFTER_SECONDS));
        request.log.warn({ err }, 'request failed: service unavailable');
        return reply.status(status).send(body(status, err.code, err.message));
      }
      if (isDependencyOutage(err)) {
        request.log.warn({ err }, 'request failed: a dependency is unavailable');
        reply.header('retry-after', String(DEPENDENCY_RETRY_AFTER_SECONDS));
        return reply
          .status(503)
          .send(body(503, 'STORAGE_UNAVAILABLE', 'Storage is temporarily unavailable; please retry shortly'));
      }
      request.log.error({ err }, 'request failed: internal error');
      return reply.status(500).send(body(500, 'INTERNAL_ERROR', 'Something went wrong on our side'));
    });

    app.setNotFoundHandler((request, reply) => {
      reply.status(404).send(body(404, 'NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`));
    });
  },
  { name: 'scs-error-handler', fastify: '5.x' },
);
