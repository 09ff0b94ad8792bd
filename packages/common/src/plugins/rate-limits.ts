import rateLimit from '@fastify/rate-limit';
import fp from 'fastify-plugin';
import { RateLimited } from '../errors';

export interface RateLimitsOptions {
  /** Count per authenticated user (after authentication) instead of per client address. */
  perUser?: boolean;
}

/**
 * Per-route rate limits (`config.rateLimit` on a route; nothing is limited by default), answered
 * as 429 RATE_LIMITED with Retry-After in the product's error shape.
 */
export const rateLimitsPlugin = fp<RateLimitsOptions>(
  async function rateLimits(app, opts) {
    await app.register(rateLimit, {
      global: false,
      ...(opts.perUser
        ? { hook: 'preHandler' as const, keyGenerator: (request) => (request.user as { sub?: string } | undefined)?.sub ?? request.ip }
        : {}),
      errorResponseBuilder: (_request, context) =>
        Object.assign(new RateLimited(), { retryAfterSeconds: Math.ceil(context.ttl / 1000) }),
    });
  },
  { name: 'scs-rate-limits', fastify: '5.x' },
);
