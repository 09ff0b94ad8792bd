import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createSigner } from 'fast-jwt';
import Fastify, { type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import {
  accessTokenVerifierOptions,
  authenticatePlugin,
  bearerToken,
  createAwsClients,
  errorHandlerPlugin,
  PublicKeyStore,
  readSigningKey,
  rotateSigningKey,
  usersTableRoleLookup,
  VERIFIED_TOKEN_CACHE_MS,
  VERIFIED_TOKENS_CACHED,
} from '../src';

const aws = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 2, AWS_REQUEST_TIMEOUT_MS: 5_000 });
const unique = `/scs-test/authn-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const params = { signingKeyParam: `${unique}/signing`, publicKeysParam: `${unique}/public` };
// The users table as the auth service writes it (hash key username; id and role among the attributes).
const USERS_TABLE = process.env.USERS_TABLE ?? 'scs-users';

let app: FastifyInstance;
let store: PublicKeyStore;
beforeAll(async () => {
  await rotateSigningKey(aws.ssm, params, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 60 });
  store = new PublicKeyStore(aws.ssm, params.publicKeysParam, 60_000);
  await store.load();
  app = Fastify();
  await app.register(errorHandlerPlugin);
  await app.register(authenticatePlugin, {
    keys: store,
    issuer: 'scs-auth',
    audience: 'scs',
    currentRole: usersTableRoleLookup(aws.dynamo, USERS_TABLE),
  });
  app.get('/private', async (request) => ({ sub: request.user.sub }));
  app.get('/admin', { config: { roles: ['admin'] } }, async (request) => ({ role: request.user.role }));
  app.get('/open', { config: { public: true } }, async () => ({ ok: true }));
});
afterAll(async () => {
  await app.close();
  aws.destroy();
});

interface Account {
  sub: string;
  username: string;
}

async function token(role = 'user', account: Account = { sub: '11111111-1111-4111-8111-111111111111', username: 'tester' }) {
  const key = await readSigningKey(aws.ssm, params.signingKeyParam, Date.now());
  return createSigner({ key: key?.privateKeyPem, algorithm: 'ES256', kid: key?.kid, iss: 'scs-auth', aud: 'scs', expiresIn: 60_000 })({
    sub: account.sub,
    username: account.username,
    role,
    token_use: 'access',
  });
}
const get = (url: string, bearer?: string) => app.inject({ method: 'GET', url, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

/** An account row in the users table with the given role. */
async function account(role: 'user' | 'admin'): Promise<Account> {
  const a = { sub: randomUUID(), username: `acct-${randomUUID().slice(0, 12)}` };
  await aws.dynamo.send(new PutCommand({ TableName: USERS_TABLE, Item: { username: a.username, id: a.sub, role, passwordHash: 'x' } }));
  return a;
}
const setRole = (a: Account, role: string) =>
  aws.dynamo.send(
    new UpdateCommand({
      TableName: USERS_TABLE,
      Key: { username: a.username },
      UpdateExpression: 'SET #role = :role',
      ExpressionAttributeNames: { '#role': 'role' },
      ExpressionAttributeValues: { ':role': role },
    }),
  );

describe('the authenticate plugin', () => {
  it('authenticates every route by default; `public: true` opts out; roles restrict', async () => {
    const admin = await account('admin');
    expect((await get('/private')).statusCode).toBe(401);
    expect((await get('/open')).statusCode).toBe(200);
    expect((await get('/private', await token())).json()).toEqual({ sub: '11111111-1111-4111-8111-111111111111' });
    expect((await get('/admin', await token('user', admin))).statusCode).toBe(403);
    expect((await get('/admin', await token('admin', admin))).json()).toEqual({ role: 'admin' });
  });

  it('accepts the Bearer scheme in any case and after one or more spaces (RFC 9110)', async () => {
    const t = await token();
    for (const header of [`bearer ${t}`, `BEARER ${t}`, `Bearer  ${t}`, `bEaReR   ${t}`]) {
      const res = await app.inject({ method: 'GET', url: '/private', headers: { authorization: header } });
      expect(res.statusCode).toBe(200);
    }
  });

  it('refuses a malformed Authorization header before verifying anything', async () => {
    for (const header of ['Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', `Bearer\t${'x'.repeat(10)}`, `Bearerx ${'x'.repeat(10)}`, `Token ${'x'.repeat(10)}`]) {
      const res = await app.inject({ method: 'GET', url: '/private', headers: { authorization: header } });
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe('UNAUTHORIZED');
    }
  });

  it('bearerToken parses RFC 9110 credentials: scheme in any case, 1*SP, a token68', () => {
    expect(bearerToken('bearer abc.def-ghi_~+/==')).toBe('abc.def-ghi_~+/==');
    expect(bearerToken('Bearer    abc')).toBe('abc');
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken('Bearer abc=def')).toBeUndefined();
    expect(bearerToken('Basic abc')).toBeUndefined();
  });

  it('admin routes act on the current role: a demoted admin gets 403 at once with the token issued before', async () => {
    const admin = await account('admin');
    const issuedBefore = await token('admin', admin);
    expect((await get('/admin', issuedBefore)).statusCode).toBe(200);
    await setRole(admin, 'user');
    const res = await get('/admin', issuedBefore);
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('FORBIDDEN');
    // Routes without roles do not look the account up and keep working for the rest of the token's life.
    expect((await get('/private', issuedBefore)).statusCode).toBe(200);
  });

  it('admin routes need both: a promoted account still needs a token issued after the promotion', async () => {
    const user = await account('user');
    const issuedBefore = await token('user', user);
    await setRole(user, 'admin');
    expect((await get('/admin', issuedBefore)).statusCode).toBe(403);
    expect((await get('/admin', await token('admin', user))).statusCode).toBe(200);
  });

  it('admin routes refuse a token whose account is gone, or whose name now belongs to another account (401)', async () => {
    const admin = await account('admin');
    const t = await token('admin', admin);
    await aws.dynamo.send(new PutCommand({ TableName: USERS_TABLE, Item: { username: admin.username, id: randomUUID(), role: 'admin' } }));
    expect((await get('/admin', t)).statusCode).toBe(401);
    await aws.dynamo.send(new DeleteCommand({ TableName: USERS_TABLE, Key: { username: admin.username } }));
    const res = await get('/admin', t);
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe('UNAUTHORIZED');
  });

  it('admin routes answer 503 when the current role cannot be read (fail closed, never the claim alone)', async () => {
    const dead = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: 1, AWS_REQUEST_TIMEOUT_MS: 1_000 });
    const broken = Fastify();
    try {
      await broken.register(errorHandlerPlugin);
      await broken.register(authenticatePlugin, { keys: store, issuer: 'scs-auth', audience: 'scs', currentRole: usersTableRoleLookup(dead.dynamo, USERS_TABLE) });
      broken.get('/admin', { config: { roles: ['admin'] } }, async () => ({ ok: true }));
      const res = await broken.inject({ method: 'GET', url: '/admin', headers: { authorization: `Bearer ${await token('admin', await account('admin'))}` } });
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('STORAGE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await broken.close();
      dead.destroy();
    }
  });

  it('a route restricted to roles cannot be registered without a current-role lookup', async () => {
    const bare = Fastify();
    try {
      await bare.register(authenticatePlugin, { keys: store, issuer: 'scs-auth', audience: 'scs' });
      expect(() => bare.get('/admin', { config: { roles: ['admin'] } }, async () => ({}))).toThrow(/currentRole/);
    } finally {
      await bare.close();
    }
  });

  it('JW-07: a token verified before is refused as soon as its key is no longer trusted (the key is checked before the cache)', async () => {
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

describe('JW-07: the cache of verified tokens', () => {
  // Keys of its own: the tests above rotate theirs far into the future.
  const own = { signingKeyParam: `${unique}-cache/signing`, publicKeysParam: `${unique}-cache/public` };
  let keys: PublicKeyStore;
  const apps: FastifyInstance[] = [];
  beforeAll(async () => {
    await rotateSigningKey(aws.ssm, own, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 60 });
    keys = new PublicKeyStore(aws.ssm, own.publicKeysParam, 60_000);
    await keys.load();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
  });

  async function appWith(clockToleranceSeconds?: number) {
    const a = Fastify();
    apps.push(a);
    await a.register(errorHandlerPlugin);
    await a.register(authenticatePlugin, { keys, issuer: 'scs-auth', audience: 'scs', ...(clockToleranceSeconds !== undefined ? { clockToleranceSeconds } : {}) });
    a.get('/private', async (request) => ({ sub: request.user.sub }));
    const call = (bearer: string) => a.inject({ method: 'GET', url: '/private', headers: { authorization: `Bearer ${bearer}` } });
    return { app: a, call };
  }
  async function sign(expiresIn = 60_000) {
    const key = await readSigningKey(aws.ssm, own.signingKeyParam, Date.now());
    return createSigner({ key: key?.privateKeyPem, algorithm: 'ES256', kid: key?.kid, iss: 'scs-auth', aud: 'scs', expiresIn })({
      sub: '11111111-1111-4111-8111-111111111111',
      username: 'tester',
      role: 'user',
      token_use: 'access',
    });
  }

  it('is bounded, expires with the token, and is keyed by the whole token (no custom key builder)', () => {
    // The plugin's own cache keys entries by the token string itself; fast-jwt's cache (keyed by a
    // hash, with an optional custom key builder) is off.
    const verify: Record<string, unknown> = accessTokenVerifierOptions('pem', { issuer: 'scs-auth', audience: 'scs' });
    expect(verify).toMatchObject({ algorithms: ['ES256'], cache: false });
    expect(verify.cacheKeyBuilder).toBeUndefined();
    expect(VERIFIED_TOKENS_CACHED).toBeLessThanOrEqual(10_000);
    expect(VERIFIED_TOKEN_CACHE_MS).toBeLessThanOrEqual(15 * 60_000);
  });

  it('a token that differs from an accepted one only in its signature or payload is refused', async () => {
    const { call } = await appWith();
    const genuine = await sign();
    expect((await call(genuine)).statusCode).toBe(200);
    const [header, payload, signature] = genuine.split('.') as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    expect((await call(`${header}.${payload}.${flipped}`)).statusCode).toBe(401);
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
    expect((await call(`${header}.${forged}.${signature}`)).statusCode).toBe(401);
    expect((await call(genuine)).statusCode).toBe(200);
  });

  it('an accepted token is refused once it has expired', async () => {
    const { call } = await appWith(0);
    const shortLived = await sign(60_000);
    expect((await call(shortLived)).statusCode).toBe(200);
    try {
      // Only the clock moves (to just after the token's expiry); timers and I/O stay real.
      jest.useFakeTimers({
        now: Date.now() + 61_000,
        doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
      });
      const late = await call(shortLived);
      expect(late.statusCode).toBe(401);
      expect(late.json().message).toMatch(/expired/);
    } finally {
      jest.useRealTimers();
    }
  });
});
