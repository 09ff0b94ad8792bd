import { createSigner } from 'fast-jwt';
import Fastify, { type FastifyInstance } from 'fastify';
import { authenticatePlugin, createAwsClients, errorHandlerPlugin, PublicKeyStore, readSigningKey, rotateSigningKey } from '../src';

const aws = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 2, AWS_REQUEST_TIMEOUT_MS: 5_000 });
const unique = `/scs-test/authn-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const params = { signingKeyParam: `${unique}/signing`, publicKeysParam: `${unique}/public` };

let app: FastifyInstance;
let store: PublicKeyStore;
beforeAll(async () => {
  await rotateSigningKey(aws.ssm, params, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 60 });
  store = new PublicKeyStore(aws.ssm, params.publicKeysParam, 60_000);
  await store.load();
  app = Fastify();
  await app.register(errorHandlerPlugin);
  await app.register(authenticatePlugin, { keys: store, issuer: 'scs-auth', audience: 'scs' });
  app.get('/private', async (request) => ({ sub: request.user.sub }));
  app.get('/admin', { config: { roles: ['admin'] } }, async () => ({ ok: true }));
  app.get('/open', { config: { public: true } }, async () => ({ ok: true }));
});
afterAll(async () => {
  await app.close();
  aws.destroy();
});

async function token(role = 'user', now = Date.now()) {
  const key = await readSigningKey(aws.ssm, params.signingKeyParam, now);
  return createSigner({ key: key?.privateKeyPem, algorithm: 'ES256', kid: key?.kid, iss: 'scs-auth', aud: 'scs', expiresIn: 60_000 })({
    sub: '11111111-1111-4111-8111-111111111111',
    username: 'tester',
    role,
    token_use: 'access',
  });
}
const get = (url: string, bearer?: string) => app.inject({ method: 'GET', url, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

describe('the authenticate plugin', () => {
  it('authenticates every route by default; `public: true` opts out; roles restrict', async () => {
    expect((await get('/private')).statusCode).toBe(401);
    expect((await get('/open')).statusCode).toBe(200);
    expect((await get('/private', await token())).json()).toEqual({ sub: '11111111-1111-4111-8111-111111111111' });
    expect((await get('/admin', await token('user'))).statusCode).toBe(403);
    expect((await get('/admin', await token('admin'))).statusCode).toBe(200);
  });

  it('refuses a malformed Authorization header before verifying anything', async () => {
    for (const header of ['Bearer', 'Basic abc', 'Bearer a b', `bearer ${'x'.repeat(10)}`]) {
      const res = await app.inject({ method: 'GET', url: '/private', headers: { authorization: header } });
      expect(res.statusCode).toBe(401);
    }
  });

  it('JW-07: verification results are not cached: a token is refused as soon as its key is no longer trusted', async () => {
    const old = await token();
    expect((await get('/private', old)).statusCode).toBe(200);
    // Two rotations far in the future prune the first key (its retirement has passed).
    const later = new Date(Date.now() + 3_600_000);
    await rotateSigningKey(aws.ssm, params, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1, now: later });
    await rotateSigningKey(aws.ssm, params, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1, now: new Date(later.getTime() + 5_000) });
    await store.load();
    expect((await get('/private', old)).statusCode).toBe(401);
  });
});
