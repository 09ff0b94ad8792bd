import helmet from '@fastify/helmet';
import fp from 'fastify-plugin';

export interface SecurityHeadersOptions {
  /** Extra CSP directives for a service that serves pages (the UI); APIs use the strict default. */
  contentSecurityPolicy?: Record<string, string[]>;
}

/**
 * Helmet with the product's defaults: a CSP with default-src 'self' (or 'none' for APIs),
 * object-src/base-uri/frame-ancestors 'none' (WB-03), HSTS (WB-01), nosniff (DL-02), no referrer;
 * and `Cache-Control: no-store` on every answer of a route that is not `public` (a user's data
 * never stays in a browser or shared cache) unless the route set its own.
 */
export const securityHeadersPlugin = fp<SecurityHeadersOptions>(
  async function securityHeaders(app, opts) {
    await app.register(helmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: opts.contentSecurityPolicy ?? {
          'default-src': ["'none'"],
          'object-src': ["'none'"],
          'base-uri': ["'none'"],
          'frame-ancestors': ["'none'"],
          'form-action': ["'none'"],
        },
      },
      hsts: { maxAge: 31_536_000, includeSubDomains: true },
      referrerPolicy: { policy: 'no-referrer' },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    });
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.routeOptions.config?.public !== true && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      return payload;
    });
  },
  { name: 'scs-security-headers', fastify: '5.x' },
);
