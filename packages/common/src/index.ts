export * from './accounts';
export * from './aws';
export * from './background-retries';
export * from './config';
export * from './dynamo';
export * from './errors';
export * from './files/keys';
export * from './files/tags';
export * from './http';
export * from './keys';
export * from './logger';
export * from './resources';
export * from './queue-poller';
export * from './rate-limit-store';
export * from './s3-copy';
export * from './s3-versions';
export * from './server';
export { bodyRatePlugin, type BodyRateOptions } from './plugins/body-rate';
export { auditPlugin, type AuditFields, type AuditOutcome } from './plugins/audit';
export {
  accessTokenVerifierOptions,
  authenticatePlugin,
  bearerToken,
  cachedRoleLookup,
  VERIFIED_TOKEN_CACHE_MS,
  VERIFIED_TOKENS_CACHED,
  type AccessTokenClaims,
  type AuthenticateOptions,
  type AuthUser,
  type Role,
  type RoleLookup,
} from './plugins/authenticate';
export {
  connectionsPlugin,
  hasUnreadBody,
  settleUnreadBody,
  type ConnectionsOptions,
  type LingerOutcome,
} from './plugins/connections';
export { errorBody, errorHandlerPlugin, type ErrorBody } from './plugins/error-handler';
export { inputPlugin } from './plugins/input';
export { observabilityPlugin, type ObservabilityOptions } from './plugins/observability';
export { securityHeadersPlugin, type SecurityHeadersOptions } from './plugins/security-headers';
export { ErrorResponse, errorResponses } from './schemas';
export * from './service-app';
export { addressKey, extraRateLimit, rateLimitsPlugin, type RateLimitsOptions } from './plugins/rate-limits';
