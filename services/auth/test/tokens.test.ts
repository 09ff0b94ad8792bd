import { readSigningKey } from '@scs/common';
import { createSigner } from 'fast-jwt';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { buildTestApp, signedIn, type TestApp } from './helpers';

let t: TestApp;
let signingPem: string;
let kid: string;
beforeAll(async () => {
  t = await buildTestApp();
  const key = await readSigningKey(t.aws.ssm, t.config.JWT_SIGNING_KEY_PARAM);
  signingPem = key?.privateKeyPem ?? '';
  kid = key?.kid ?? '';
});
afterAll(async () => t.app.close());

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const me = (token: string) => t.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } });

function claims(overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: '00000000-0000-4000-8000-000000000000',
    username: 'mallory',
    role: 'admin',
    token_use: 'access',
    iss: t.config.JWT_ISSUER,
    aud: t.config.JWT_AUDIENCE,
    iat: now,
    exp: now + 600,
    ...overrides,
  };
}

function signWith(pem: string, payload: object, header: Record<string, unknown> = {}) {
  return createSigner({ key: pem, algorithm: 'ES256', kid: (header.kid as string) ?? kid, header: { alg: 'ES256', ...header } })(payload);
}

describe('access tokens', () => {
  it('GET /auth/me answers the account for a valid token', async () => {
    const s = await signedIn(t.app);
    const res = await me(s.accessToken);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: s.userId, username: s.username, role: 'user', createdAt: expect.any(String) });
  });

  it('JW-03: tokens are ES256 with kid, 15 minutes, with sub/username/role/iss/aud/iat/exp', async () => {
    const s = await signedIn(t.app);
    const [h, p] = s.accessToken.split('.');
    const header = JSON.parse(Buffer.from(h ?? '', 'base64url').toString());
    const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString());
    expect(header).toMatchObject({ alg: 'ES256', typ: 'JWT', kid });
    expect(payload).toMatchObject({ sub: s.userId, username: s.username, role: 'user', iss: 'scs-auth', aud: 'scs' });
    expect(payload.exp - payload.iat).toBe(900);
  });

  it('accepts the scheme in any case and one or more spaces after it (RFC 9110): bearer, BEARER, two spaces', async () => {
    const s = await signedIn(t.app);
    for (const authorization of [`bearer ${s.accessToken}`, `BEARER ${s.accessToken}`, `Bearer  ${s.accessToken}`]) {
      const res = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization } });
      expect(res.statusCode).toBe(200);
      expect(res.json().id).toBe(s.userId);
    }
  });

  it('requires a token: 401 UNAUTHORIZED without one', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/me' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED', error: 'Unauthorized' });
  });

  it('JW-01: alg "none" is rejected', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims())}.`;
    expect((await me(token)).statusCode).toBe(401);
  });

  it('JW-01: HS256 signed with the public key as the secret is rejected', async () => {
    const jwks = (await t.app.inject({ method: 'GET', url: '/auth/jwks.json' })).json();
    const publicPem = JSON.stringify(jwks.keys[0]);
    const head = b64({ alg: 'HS256', typ: 'JWT', kid });
    const body = b64(claims());
    for (const secret of [publicPem, signingPem.replace('PRIVATE', 'PUBLIC')]) {
      const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
      expect((await me(`${head}.${body}.${sig}`)).statusCode).toBe(401);
    }
  });

  it('JW-02: a token signed by another key is rejected, whatever kid, jku or jwk it claims', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const jwk = publicKey.export({ format: 'jwk' });
    expect((await me(signWith(pem, claims()))).statusCode).toBe(401);
    expect((await me(signWith(pem, claims(), { kid: 'attacker-kid', jwk }))).statusCode).toBe(401);
    expect((await me(signWith(pem, claims(), { jku: 'http://127.0.0.1:1/jwks.json' }))).statusCode).toBe(401);
    expect((await me(signWith(signingPem, claims(), { kid: 'unknown-kid' }))).statusCode).toBe(401);
  });

  it('JW-03: expired and not-yet-valid tokens are rejected', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await me(signWith(signingPem, claims({ iat: now - 2000, exp: now - 1000 })));
    expect(expired.statusCode).toBe(401);
    expect(expired.json().message).toMatch(/expired/);
    expect((await me(signWith(signingPem, claims({ nbf: now + 600 })))).statusCode).toBe(401);
  });

  it('JW-04: a wrong issuer or audience is rejected; a token without token_use=access is rejected', async () => {
    expect((await me(signWith(signingPem, claims({ iss: 'someone-else' })))).statusCode).toBe(401);
    expect((await me(signWith(signingPem, claims({ aud: 'another-app' })))).statusCode).toBe(401);
    expect((await me(signWith(signingPem, claims({ token_use: 'refresh' })))).statusCode).toBe(401);
  });

  it('JW-04: the refresh token cannot be used as an access token', async () => {
    const s = await signedIn(t.app);
    expect((await me(s.refresh)).statusCode).toBe(401);
  });

  it('a validly signed token for an account that does not exist is 401', async () => {
    expect((await me(signWith(signingPem, claims()))).statusCode).toBe(401);
  });

  it('GET /auth/jwks.json serves the public keys only', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/jwks.json' });
    expect(res.statusCode).toBe(200);
    const { keys } = res.json();
    expect(keys.length).toBeGreaterThanOrEqual(1);
    expect(keys.map((k: { kid: string }) => k.kid)).toContain(kid);
    for (const k of keys) {
      expect(k).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(k).not.toHaveProperty('d');
    }
  });
});
