import { authenticatePlugin, baseConfigProperties, portProperty, PublicKeyStore, runService, serverOptions } from '@scs/common';
import { Type } from '@sinclair/typebox';
import Fastify from 'fastify';

/**
 * The benchmarks' baseline: the services' Fastify version and server options (same logger level,
 * request ids, timeouts) and nothing else. `GET /bare` is the floor any route can reach;
 * `GET /verified` adds only access-token verification, with the services' own
 * `authenticatePlugin` and `PublicKeyStore` reading the same SSM parameter, so
 * p99(verified) - p99(bare) is what verifying a token costs.
 */
const BaselineConfig = Type.Object({ ...baseConfigProperties, PORT: portProperty(3099) });

const Small = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } as const;

runService('bench-baseline', BaselineConfig, async (config, { aws, fastify }) => {
  const app = Fastify({ ...serverOptions(config), ...fastify });
  const keys = new PublicKeyStore(aws.ssm, config.JWT_PUBLIC_KEYS_PARAM, config.KEY_REFRESH_SECONDS * 1000, app.log);
  await keys.load();
  keys.start();
  app.addHook('onClose', async () => keys.stop());
  await app.register(authenticatePlugin, { keys, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE });

  app.get('/bare', { config: { public: true }, schema: { response: { 200: Small } } }, async () => ({ ok: true }));
  app.get('/verified', { schema: { response: { 200: Small } } }, async () => ({ ok: true }));
  return app;
});
