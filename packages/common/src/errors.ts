import createError from '@fastify/error';

/**
 * Errors shared by every service. Each carries a stable machine `code` and an HTTP status; the
 * error handler turns them into Fastify's JSON shape. Service-specific errors live in each
 * service's own errors.ts, built the same way.
 */
export const Unauthorized = createError('UNAUTHORIZED', '%s', 401);
export const Forbidden = createError('FORBIDDEN', '%s', 403);
export const NotFound = createError('NOT_FOUND', '%s', 404);
export const StorageUnavailable = createError(
  'STORAGE_UNAVAILABLE',
  'Storage is temporarily unavailable; please retry shortly',
  503,
);
export const ServiceBusy = createError('SERVICE_BUSY', 'The service is busy; please retry shortly', 503);

/** Seconds a client should wait before retrying after a 503 caused by a dependency. */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 5;

/** An error that tells the client when to come back (429, 503). */
export interface RetryableError extends Error {
  retryAfterSeconds?: number;
}

/** Fastify's own 4xx codes mapped to the product's stable codes. */
export const FRAMEWORK_CODES: Record<string, string> = {
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST',
  FST_ERR_NOT_FOUND: 'NOT_FOUND',
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: 'UNAUTHORIZED',
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  FST_JWT_AUTHORIZATION_TOKEN_INVALID: 'UNAUTHORIZED',
  FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED: 'UNAUTHORIZED',
  FST_JWT_BAD_REQUEST: 'UNAUTHORIZED',
  FST_JWT_BAD_COOKIE_REQUEST: 'UNAUTHORIZED',
  FST_JWT_NO_AUTHORIZATION_IN_COOKIE: 'UNAUTHORIZED',
  FST_ERR_RATE_LIMITED: 'RATE_LIMITED',
};

/** A request body (an upload) arriving slower than the minimum rate (see `bodyRatePlugin`). */
export const RequestTooSlow = createError('REQUEST_TOO_SLOW', '%s', 408);
/** A request body that did not arrive whole in time (the same code as Node's request timeout). */
export const RequestTimedOut = createError('REQUEST_TIMEOUT', '%s', 408);

/** A route of the contract whose service has not shipped it yet (answered after authentication). */
export const NotImplemented = createError('NOT_IMPLEMENTED', '%s', 501);
export const RateLimited = createError('RATE_LIMITED', 'Too many requests: slow down and try again shortly', 429);
