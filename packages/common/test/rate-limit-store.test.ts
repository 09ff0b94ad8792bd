import { GetCommand } from '@aws-sdk/lib-dynamodb';
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { addressKey, createAwsClients, loadConfig, rateLimitsPlugin, resourceNameProperties, SharedRateLimitStore } from '../src';
import { errorHandlerPlugin } from '../src/plugins/error-handler';
import { Type } from '@sinclair/typebox';

/**
 * The shared rate-limit store against the test emulator: what two instances count together, how a
 * window ends, and what happens when DynamoDB cannot be reached.
 */
const settings = loadConfig(Type.Object({ THROTTLE_TABLE: resourceNameProperties.THROTTLE_TABLE }), process.env);
const aws = createAwsClients({
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
  AWS_MAX_ATTEMPTS: 2,
  AWS_REQUEST_TIMEOUT_MS: 5_000,
});
afterAll(() => aws.destroy());

const silent = Fastify({ logger: false }).log;
const store = (now?: () => number) =>
  new SharedRateLimitStore({ db: aws.dynamo, table: settings.THROTTLE_TABLE, service: 'test', log: silent, ...(now ? { now } : {}) });

describe('SharedRateLimitStore', () => {
  it('two instances counting 20 parallel hits on one key admit exactly the limit between them', async () => {
    const [a, b] = [store(), store()];
    const key = randomUUID();
    const hits = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).hit('route', key, 60_000, 5)));
    expect(hits.filter((h) => h.current <= 5)).toHaveLength(5);
    expect(hits.filter((h) => h.current > 5)).toHaveLength(15);
    for (const h of hits) {
      expect(h.ttl).toBeGreaterThan(0);
      expect(h.ttl).toBeLessThanOrEqual(60_000);
    }
  });

  it('a refused hit is not counted, and the window ends where it began: the next hit starts a new one', async () => {
    let now = Date.parse('2031-03-01T00:00:00Z');
    const clocked = store(() => now);
    const key = randomUUID();
    expect((await clocked.hit('route', key, 60_000, 2)).current).toBe(1);
    now += 10_000;
    expect(await clocked.hit('route', key, 60_000, 2)).toEqual({ current: 2, ttl: 50_000 });
    now += 10_000;
    expect(await clocked.hit('route', key, 60_000, 2)).toEqual({ current: 3, ttl: 40_000 });
    const item = await aws.dynamo.send(new GetCommand({ TableName: settings.THROTTLE_TABLE, Key: { pk: `rl#test#route#${key}` } }));
    expect(item.Item).toMatchObject({ hits: 2, windowEnds: Date.parse('2031-03-01T00:01:00Z') });
    now += 40_000;
    expect(await clocked.hit('route', key, 60_000, 2)).toEqual({ current: 1, ttl: 60_000 });
    // Routes and services are counted apart.
    expect((await clocked.hit('other route', key, 60_000, 2)).current).toBe(1);
  });

  it('when DynamoDB cannot be reached it counts in this process instead (never refuses everyone, never drops the limit)', async () => {
    const down = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: 1, AWS_REQUEST_TIMEOUT_MS: 1_000 });
    const errors: unknown[] = [];
    const log = Object.assign(Object.create(silent) as typeof silent, { error: (obj: unknown) => void errors.push(obj) });
    try {
      const fallback = new SharedRateLimitStore({ db: down.dynamo, table: settings.THROTTLE_TABLE, service: 'test', log });
      const key = randomUUID();
      const currents = [];
      for (let i = 0; i < 4; i += 1) currents.push((await fallback.hit('route', key, 60_000, 3)).current);
      expect(currents).toEqual([1, 2, 3, 4]);
      // Said once, not once per request.
      expect(errors).toHaveLength(1);
    } finally {
      down.destroy();
    }
  });
});

describe('rateLimitsPlugin with the shared store', () => {
  const buildApp = async () => {
    const app = Fastify({ logger: false });
    await app.register(errorHandlerPlugin);
    await app.register(rateLimitsPlugin, { shared: { db: aws.dynamo, table: settings.THROTTLE_TABLE, service: `test-${randomUUID()}` } });
    return app;
  };

  it('a limit configured on a route holds across two apps that share the table and service name', async () => {
    const service = `test-${randomUUID()}`;
    const apps = await Promise.all(
      [0, 1].map(async () => {
        const app = Fastify({ logger: false });
        await app.register(errorHandlerPlugin);
        await app.register(rateLimitsPlugin, { shared: { db: aws.dynamo, table: settings.THROTTLE_TABLE, service } });
        app.get('/limited', { config: { rateLimit: { max: 3, timeWindow: 60_000 } } }, async () => ({ ok: true }));
        return app;
      }),
    );
    try {
      const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => apps[i % 2]!.inject({ method: 'GET', url: '/limited' })));
      expect(codes.filter((r) => r.statusCode === 200)).toHaveLength(3);
      const refused = codes.filter((r) => r.statusCode === 429);
      expect(refused).toHaveLength(5);
      expect(refused[0]!.json()).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(refused[0]!.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await Promise.all(apps.map((app) => app.close()));
    }
  });

  it('routes are counted apart', async () => {
    const app = await buildApp();
    try {
      app.get('/a', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, async () => ({ ok: true }));
      app.get('/b', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, async () => ({ ok: true }));
      expect((await app.inject({ method: 'GET', url: '/a' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/b' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/a' })).statusCode).toBe(429);
    } finally {
      await app.close();
    }
  });
});

describe('addressKey', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('counts %s as %s', (ip, key) => {
    expect(addressKey(ip)).toBe(key);
  });
});
