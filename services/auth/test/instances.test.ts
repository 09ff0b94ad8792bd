import { rotateSigningKey } from '@scs/common';
import { buildTestApp, login, PASSWORD, register, signedIn, type TestApp, uniqueName } from './helpers';

/** Two auth instances sharing one emulator, as two EC2 instances share DynamoDB and SSM. */
let a: TestApp;
let b: TestApp;
beforeAll(async () => {
  [a, b] = await Promise.all([buildTestApp(), buildTestApp()]);
});
afterAll(async () => Promise.all([a.app.close(), b.app.close()]));

describe('several auth instances', () => {
  it('a user registered on one instance signs in on the other, whose token the first accepts', async () => {
    const username = uniqueName();
    expect((await register(a.app, username)).statusCode).toBe(201);
    const res = await login(b.app, username);
    expect(res.statusCode).toBe(200);
    const me = await a.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${res.json().accessToken}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json().username).toBe(username);
  });

  it('AU-05: failed logins count across instances', async () => {
    const username = uniqueName();
    await register(a.app, username);
    for (let i = 0; i < 5; i += 1) await login(i % 2 ? a.app : b.app, username, 'wrong password!!');
    expect((await login(a.app, username)).statusCode).toBe(429);
    expect((await login(b.app, username)).statusCode).toBe(429);
  });

  it('AU-05: 24 parallel wrong passwords spread over two instances: at most 5 are checked, then even the right one is throttled', async () => {
    const username = uniqueName();
    await register(a.app, username);
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => login(i % 2 ? a.app : b.app, username, `wrong password ${i}!!`)));
    expect(results.filter((r) => r.statusCode === 401).length).toBeLessThanOrEqual(5);
    expect(results.filter((r) => r.statusCode === 429).length).toBeGreaterThanOrEqual(19);
    // Attempts refused while others of the account were being checked did not count: one at a time,
    // guessing goes on (on either instance) until exactly 5 have failed.
    let failed = results.filter((r) => r.statusCode === 401).length;
    for (let i = 0; i < 6; i += 1) {
      if ((await login(i % 2 ? a.app : b.app, username, `wrong password again ${i}!!`)).statusCode !== 401) break;
      failed += 1;
    }
    expect(failed).toBe(5);
    expect((await login(a.app, username)).statusCode).toBe(429);
  });

  it('registrations per address are counted across instances: parallel registrations on two instances admit the limit once', async () => {
    const limited = await Promise.all([buildTestApp({ REGISTER_RATE_LIMIT_PER_MINUTE: '3' }), buildTestApp({ REGISTER_RATE_LIMIT_PER_MINUTE: '3' })]);
    try {
      // An address of this test's own: the count is shared by everything on the emulator.
      const address = `198.18.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          limited[i % 2]!.app.inject({
            method: 'POST',
            url: '/auth/register',
            payload: { username: uniqueName(), password: PASSWORD },
            headers: { 'x-forwarded-for': address },
          }),
        ),
      );
      expect(results.filter((r) => r.statusCode === 201)).toHaveLength(3);
      expect(results.filter((r) => r.statusCode === 429)).toHaveLength(5);
      expect(results.find((r) => r.statusCode === 429)?.json()).toMatchObject({ code: 'RATE_LIMITED' });
    } finally {
      await Promise.all(limited.map((l) => l.app.close()));
    }
  });

  it('JW-06: parallel refreshes on both instances get one successor; once it is rotated, the old token is reuse on either', async () => {
    const s = await signedIn(a.app);
    const refreshOn = (app: TestApp['app'], token: string | undefined) =>
      app.inject({ method: 'POST', url: '/auth/refresh', cookies: { scs_refresh: token ?? '' } });
    const results = await Promise.all([refreshOn(a.app, s.refresh), refreshOn(b.app, s.refresh), refreshOn(a.app, s.refresh), refreshOn(b.app, s.refresh)]);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
    const successors = new Set(results.map((r) => r.cookies.find((c) => c.name === 'scs_refresh')?.value));
    expect(successors.size).toBe(1);
    const [next] = [...successors];
    expect((await refreshOn(b.app, next)).statusCode).toBe(200);
    expect((await refreshOn(a.app, s.refresh)).statusCode).toBe(401);
  });
});

describe('key rotation', () => {
  it('keeps tokens signed by the previous key valid while new instances sign with the new key', async () => {
    const keyParams = { signingKeyParam: `/scs-test/${uniqueName()}/signing`, publicKeysParam: `/scs-test/${uniqueName()}/public` };
    const overrides = { JWT_SIGNING_KEY_PARAM: keyParams.signingKeyParam, JWT_PUBLIC_KEYS_PARAM: keyParams.publicKeysParam };
    let now = Date.now();
    const clock = { now: () => new Date(now) };
    const first = await rotateSigningKey(a.aws.ssm, keyParams, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1200 });
    const before = await buildTestApp(overrides, clock);
    try {
      const username = uniqueName();
      await register(before.app, username);
      const oldToken = (await login(before.app, username, PASSWORD)).json().accessToken as string;

      const second = await rotateSigningKey(a.aws.ssm, keyParams, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1200 });
      // Right after the rotation, a fresh instance still signs with the old key...
      const early = await buildTestApp(overrides, clock);
      const earlyToken = (await login(early.app, username, PASSWORD)).json().accessToken as string;
      await early.app.close();
      // ...and once the new key has activated, with the new one.
      now = Date.parse(second.activateAt) + 1_000;
      const after = await buildTestApp(overrides, clock);
      try {
        const newToken = (await login(after.app, username, PASSWORD)).json().accessToken as string;
        const kidOf = (tok: string) => JSON.parse(Buffer.from(tok.split('.')[0] ?? '', 'base64url').toString()).kid;
        expect(kidOf(oldToken)).toBe(first.kid);
        expect(kidOf(earlyToken)).toBe(first.kid);
        expect(kidOf(newToken)).toBe(second.kid);
        for (const app of [before.app, after.app]) {
          for (const token of [oldToken, newToken]) {
            const res = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } });
            expect(res.statusCode).toBe(200);
          }
        }
        const jwks = (await after.app.inject({ method: 'GET', url: '/auth/jwks.json' })).json();
        expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual([second.kid, first.kid]);
      } finally {
        await after.app.close();
      }
    } finally {
      await before.app.close();
    }
  });
});
