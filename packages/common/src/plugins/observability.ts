import fp from 'fastify-plugin';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry: services register their own metrics here. */
    metrics: Registry;
  }
}

export interface ObservabilityOptions {
  service: string;
  /** Throws when a dependency does not answer; `/ready` answers 503 then. */
  readiness: () => Promise<void>;
  readinessTimeoutMs?: number;
}

/**
 * `/health` (liveness: no dependency calls), `/ready` (real readiness) and `/metrics`
 * (Prometheus text format, one registry per app: no global state). `/metrics` is for the scraper
 * on the service's own port: a request that came through the ALB or the gateway (it carries
 * `X-Forwarded-For`) gets the same 404 as an unknown route, whatever path encoding reached it.
 */
export const observabilityPlugin = fp<ObservabilityOptions>(
  async function observability(app, opts) {
    const registry = new Registry();
    registry.setDefaultLabels({ service: opts.service });
    collectDefaultMetrics({ register: registry });
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds by route and status',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    app.decorate('metrics', registry);

    app.addHook('onResponse', async (request, reply) => {
      duration.observe(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode },
        reply.elapsedTime / 1000,
      );
    });

    const hidden = { hide: true } as Record<string, unknown>;
    app.get('/health', { config: { public: true }, schema: hidden, logLevel: 'warn' }, async () => ({ status: 'ok' }));

    app.get('/ready', { config: { public: true }, schema: hidden, logLevel: 'warn' }, async (request, reply) => {
      const timeoutMs = opts.readinessTimeoutMs ?? 2_000;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          opts.readiness(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`readiness check timed out after ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return { status: 'ready' };
      } catch (err) {
        request.log.warn({ err }, 'not ready');
        reply.header('retry-after', '5');
        return reply.status(503).send({
          statusCode: 503,
          code: 'NOT_READY',
          error: 'Service Unavailable',
          message: 'A dependency of this service is not answering',
        });
      } finally {
        clearTimeout(timer);
      }
    });

    app.get('/metrics', { config: { public: true }, schema: hidden, logLevel: 'warn' }, async (request, reply) => {
      if (request.headers['x-forwarded-for'] !== undefined) return reply.callNotFound();
      reply.type(registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'scs-observability', fastify: '5.x' },
);
