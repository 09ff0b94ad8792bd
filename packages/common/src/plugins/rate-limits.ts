import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import rateLimit, { type FastifyRateLimitOptions, type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { isIPv4, isIPv6 } from 'node:net';
import { RateLimited } from '../errors';
import { type RateLimitHit, SharedRateLimitStore } from '../rate-limit-store';

export interface RateLimitsOptions {
  /** Count per authenticated user (after authentication) instead of per client address. */
  perUser?: boolean;
  /**
   * Count in DynamoDB, shared by every instance of the service (`SharedRateLimitStore`), instead
   * of in this process's memory.
   */
  shared?: { db: DynamoDBDocumentClient; table: string; service: string; now?: () => number };
}

/**
 * The route a limit belongs to, from the options @fastify/rate-limit gives a store's `child`: its
 * typings say route options, but it passes the merged limit options with the route as `routeInfo`
 * (its `index.js`), so what is there is read without trusting either.
 */
function routeName(options: object): string {
  const info = 'routeInfo' in options ? options.routeInfo : undefined;
  if (typeof info !== 'object' || info === null) return 'custom';
  const url = 'url' in info && typeof info.url === 'string' ? info.url : undefined;
  const method = 'method' in info ? info.method : undefined;
  const methods = Array.isArray(method) ? method.join(',') : typeof method === 'string' ? method : '';
  return url ? `${methods} ${url}` : 'custom';
}

/** A @fastify/rate-limit store class (one instance per route, through `child`) over one SharedRateLimitStore. */
function sharedStoreClass(shared: SharedRateLimitStore): FastifyRateLimitStoreCtor {
  return class RouteStore implements FastifyRateLimitStore {
    constructor(
      _options: FastifyRateLimitOptions,
      private readonly namespace = 'global',
    ) {}

    incr(key: string, cb: (err: Error | null, res: RateLimitHit) => void, timeWindow: number, max: number): void {
      void shared.hit(this.namespace, key, timeWindow, max).then((res) => cb(null, res));
    }

    child(options: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
      return new RouteStore(options, routeName(options));
    }
  };
}

/**
 * Per-route rate limits (`config.rateLimit` on a route; nothing is limited by default), answered
 * as 429 RATE_LIMITED with Retry-After in the product's error shape. With `shared` the counts live
 * in DynamoDB and hold across instances; without, each process counts for itself.
 */
export const rateLimitsPlugin = fp<RateLimitsOptions>(
  async function rateLimits(app, opts) {
    const store = opts.shared ? sharedStoreClass(new SharedRateLimitStore({ ...opts.shared, log: app.log })) : undefined;
    await app.register(rateLimit, {
      global: false,
      ...(store ? { store } : {}),
      ...(opts.perUser
        ? { hook: 'preHandler' as const, keyGenerator: (request) => (request.user as { sub?: string } | undefined)?.sub ?? request.ip }
        : {}),
      errorResponseBuilder: (_request, context) =>
        Object.assign(new RateLimited(), { retryAfterSeconds: Math.ceil(context.ttl / 1000) }),
    });
  },
  { name: 'scs-rate-limits', fastify: '5.x' },
);

/**
 * The address a per-address limit counts: an IPv4 address as it is (also when IPv4-mapped), an
 * IPv6 address as its /64 (`2001:db8:1:2::/64`), which one client holds whole, as
 * @fastify/rate-limit's own key does.
 */
export function addressKey(ip: string): string {
  const address = ip.split('%', 1)[0] ?? '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] && isIPv4(mapped[1])) return mapped[1];
  if (!isIPv6(address)) return address.toLowerCase();
  const [head = '', tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * A further limit for routes that need two (e.g. per minute and per hour), counted in the same store
 * as `rateLimitsPlugin`'s (register that first). `keyGenerator` must tell this limit's keys apart
 * from the route's own (prefix them). The returned check counts the request and throws 429
 * RATE_LIMITED with Retry-After when the limit is exceeded; use it as an `onRequest` hook.
 */
export function extraRateLimit(
  app: FastifyInstance,
  options: { max: number; timeWindow: number; keyGenerator: (request: FastifyRequest) => string },
): (request: FastifyRequest) => Promise<void> {
  const limit = app.createRateLimit(options);
  return async (request) => {
    const result = await limit(request);
    if (!result.isAllowed && result.isExceeded) throw Object.assign(new RateLimited(), { retryAfterSeconds: result.ttlInSeconds });
  };
}
