import Fastify, { type FastifyInstance } from 'fastify';
import { errorHandlerPlugin, observabilityPlugin, securityHeadersPlugin, Unauthorized } from '../src';

/** What the common plugins let out: caching of a user's answers, the metrics endpoint. */
describe('what a service exposes', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = Fastify();
    await app.register(errorHandlerPlugin);
    await app.register(securityHeadersPlugin);
    await app.register(observabilityPlugin, { service: 'test', readiness: async () => undefined });
    app.get('/mine', async () => ({ secret: 'yours only' }));
    app.get('/refused', async () => Promise.reject(new Unauthorized('Sign in first')));
    app.get('/cacheable', async (_request, reply) => reply.header('cache-control', 'private, max-age=60').send({ ok: true }));
    app.get('/open', { config: { public: true } }, async () => ({ keys: [] }));
  });
  afterAll(async () => app.close());

  it('an authenticated route answers with Cache-Control: no-store, errors included', async () => {
    for (const url of ['/mine', '/refused']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('a route that sets its own Cache-Control keeps it; public routes are left alone', async () => {
    expect((await app.inject({ method: 'GET', url: '/cacheable' })).headers['cache-control']).toBe('private, max-age=60');
    expect((await app.inject({ method: 'GET', url: '/open' })).headers['cache-control']).toBeUndefined();
  });

  it('/metrics answers the scraper on the service port, and 404 to a request that came through a proxy', async () => {
    const direct = await app.inject({ method: 'GET', url: '/metrics' });
    expect(direct.statusCode).toBe(200);
    expect(direct.body).toContain('process_cpu_user_seconds_total');

    const proxied = await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(proxied.statusCode).toBe(404);
    expect(proxied.json()).toEqual({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'Route GET /metrics not found' });
  });
});
