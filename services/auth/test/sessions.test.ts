import { TransactionCanceledException, TransactionInProgressException } from '@aws-sdk/client-dynamodb';
import { createAwsClients } from '@scs/common';
import { buildTestApp, failNextTransactions, refreshCookie, signedIn, type TestApp } from './helpers';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.app.close());

const refreshOn = (app: TestApp['app'], token: string | undefined, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/refresh', headers, ...(token ? { cookies: { scs_refresh: token } } : {}) });
const refresh = (token: string | undefined, headers: Record<string, string> = {}) => refreshOn(t.app, token, headers);
const logout = (token: string | undefined, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/auth/logout', headers, ...(token ? { cookies: { scs_refresh: token } } : {}) });
const me = (app: TestApp['app'], accessToken: string) =>
  app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${accessToken}` } });

/** An auth app whose clock the test moves. */
async function clockedApp() {
  const clock = { now: Date.now() };
  const app = await buildTestApp({}, { now: () => new Date(clock.now) });
  return { ...app, clock };
}

describe('refresh and logout', () => {
  it('POST /auth/refresh answers like login and rotates the cookie', async () => {
    const s = await signedIn(t.app);
    const res = await refresh(s.refresh);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { id: s.userId, username: s.username } });
    const next = refreshCookie(res);
    expect(next).toBeDefined();
    expect(next).not.toBe(s.refresh);
    expect((await me(t.app, res.json().accessToken)).statusCode).toBe(200);
  });

  it('JW-06: reusing a rotated refresh token after the grace window is 401 and revokes the whole family', async () => {
    const c = await clockedApp();
    try {
      const s = await signedIn(c.app);
      const first = await refreshOn(c.app, s.refresh);
      expect(first.statusCode).toBe(200);
      const second = refreshCookie(first);
      c.clock.now += c.config.REFRESH_REUSE_GRACE_SECONDS * 1000 + 1;
      const reuse = await refreshOn(c.app, s.refresh);
      expect(reuse.statusCode).toBe(401);
      expect(reuse.json().code).toBe('INVALID_REFRESH_TOKEN');
      // The legitimate successor is now dead too: the thief and the owner both have to sign in again.
      expect((await refreshOn(c.app, second)).statusCode).toBe(401);
      const line = c.logs.find((l) => (l.audit as { event?: string } | undefined)?.event === 'refresh_token_reuse');
      expect(line?.audit).toMatchObject({ outcome: 'denied', userId: s.userId });
    } finally {
      await c.app.close();
    }
  });

  it('JW-06: parallel refreshes with one cookie (two tabs) all get the same new cookie, and the session goes on', async () => {
    const s = await signedIn(t.app);
    const results = await Promise.all(Array.from({ length: 6 }, () => refresh(s.refresh)));
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
    const cookies = new Set(results.map(refreshCookie));
    expect(cookies.size).toBe(1);
    const [next] = [...cookies];
    expect(next).not.toBe(s.refresh);
    for (const r of results) expect((await me(t.app, r.json().accessToken)).statusCode).toBe(200);
    const after = await refresh(next);
    expect(after.statusCode).toBe(200);
    expect((await refresh(refreshCookie(after))).statusCode).toBe(200);
    const parallel = t.logs.filter((l) => (l.audit as { reason?: string; userId?: string } | undefined)?.userId === s.userId);
    expect(parallel.map((l) => (l.audit as { reason?: string }).reason)).toContain('parallel_refresh');
  });

  it('JW-06: within the grace window the old cookie gets the same successor again, never a second live branch', async () => {
    const c = await clockedApp();
    try {
      const s = await signedIn(c.app);
      const first = refreshCookie(await refreshOn(c.app, s.refresh));
      c.clock.now += c.config.REFRESH_REUSE_GRACE_SECONDS * 1000 - 1_000;
      const late = await refreshOn(c.app, s.refresh);
      expect(late.statusCode).toBe(200);
      expect(refreshCookie(late)).toBe(first);
      expect((await refreshOn(c.app, first)).statusCode).toBe(200);
    } finally {
      await c.app.close();
    }
  });

  it('JW-06: a token whose successor was already rotated is reuse even within the grace window', async () => {
    const s = await signedIn(t.app);
    const t1 = refreshCookie(await refresh(s.refresh));
    const t2res = await refresh(t1);
    expect(t2res.statusCode).toBe(200);
    const reuse = await refresh(s.refresh);
    expect(reuse.statusCode).toBe(401);
    expect((await refresh(refreshCookie(t2res))).statusCode).toBe(401);
  });

  it('JW-06: a failed refresh never touches the cookie (it may already hold a newer session)', async () => {
    const s = await signedIn(t.app);
    await refresh(s.refresh);
    await refresh(refreshCookie(await refresh(s.refresh)));
    const reuse = await refresh(s.refresh);
    expect(reuse.statusCode).toBe(401);
    expect(reuse.headers['set-cookie']).toBeUndefined();
    const unknown = await refresh('A'.repeat(43));
    expect(unknown.statusCode).toBe(401);
    expect(unknown.headers['set-cookie']).toBeUndefined();
  });

  it('JW-06: REFRESH_REUSE_GRACE_SECONDS=0 turns the grace window off', async () => {
    const strict = await buildTestApp({ REFRESH_REUSE_GRACE_SECONDS: '0' });
    try {
      const s = await signedIn(strict.app);
      const next = refreshCookie(await refreshOn(strict.app, s.refresh));
      expect((await refreshOn(strict.app, s.refresh)).statusCode).toBe(401);
      expect((await refreshOn(strict.app, next)).statusCode).toBe(401);
    } finally {
      await strict.app.close();
    }
  });

  it('401 for a missing, unknown or malformed refresh token', async () => {
    expect((await refresh(undefined)).statusCode).toBe(401);
    expect((await refresh('A'.repeat(43))).statusCode).toBe(401);
    expect((await refresh('x'.repeat(500))).statusCode).toBe(401);
  });

  it('JW-04: an access token is not a refresh token', async () => {
    const s = await signedIn(t.app);
    expect((await refresh(s.accessToken)).statusCode).toBe(401);
  });

  it('JW-06: logout answers 204, clears the cookie and revokes the session', async () => {
    const s = await signedIn(t.app);
    const res = await logout(s.refresh);
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    const cleared = res.cookies.find((c) => c.name === 'scs_refresh');
    expect(cleared?.value).toBe('');
    expect(cleared?.path).toBe('/auth');
    expect((await refresh(s.refresh)).statusCode).toBe(401);
  });

  it('JW-06: logging out with a cookie that was just rotated ends the session too', async () => {
    const s = await signedIn(t.app);
    const next = refreshCookie(await refresh(s.refresh));
    expect((await logout(s.refresh)).statusCode).toBe(204);
    expect((await refresh(next)).statusCode).toBe(401);
    expect((await refresh(s.refresh)).statusCode).toBe(401);
  });

  it('logout without a session still answers 204', async () => {
    expect((await logout(undefined)).statusCode).toBe(204);
  });

  it.each([
    ['Content-Type: application/json and an empty body', { 'content-type': 'application/json' }, ''],
    ['an empty JSON object', { 'content-type': 'application/json' }, '{}'],
    ['a form body', { 'content-type': 'application/x-www-form-urlencoded' }, 'a=1'],
    ['text with odd casing', { 'content-type': 'TEXT/Plain; charset=utf-8' }, 'hello'],
  ])('FX-01: refresh and logout with %s work as without a body', async (_name, headers, payload) => {
    const s = await signedIn(t.app);
    const r = await t.app.inject({ method: 'POST', url: '/auth/refresh', headers, payload, cookies: { scs_refresh: s.refresh } });
    expect(r.statusCode).toBe(200);
    const next = refreshCookie(r);
    const out = await t.app.inject({ method: 'POST', url: '/auth/logout', headers, payload, cookies: { scs_refresh: next ?? '' } });
    expect(out.statusCode).toBe(204);
    expect((await refresh(next)).statusCode).toBe(401);
  });

  it('FX-01: a large body on refresh or logout is 413, and the session is untouched', async () => {
    const s = await signedIn(t.app);
    for (const url of ['/auth/refresh', '/auth/logout']) {
      const res = await t.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ pad: 'x'.repeat(4096) }),
        cookies: { scs_refresh: s.refresh },
      });
      expect(res.statusCode).toBe(413);
      expect(res.json().code).toBe('BODY_TOO_LARGE');
    }
    expect((await refresh(s.refresh)).statusCode).toBe(200);
  });

  it('FU-12: refresh and logout refuse cross-site browser requests', async () => {
    const s = await signedIn(t.app);
    const crossSite = await refresh(s.refresh, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.json().code).toBe('CROSS_SITE_REQUEST');
    expect((await refresh(s.refresh, { origin: 'https://evil.example' })).statusCode).toBe(403);
    expect((await logout(s.refresh, { 'sec-fetch-site': 'same-site' })).statusCode).toBe(403);
    // The session survived the forged requests.
    const ok = await refresh(s.refresh, { 'sec-fetch-site': 'same-origin', origin: 'http://localhost:80', host: 'localhost:80' });
    expect(ok.statusCode).toBe(200);
  });

  it('FU-12: the configured UI origin is accepted', async () => {
    const withOrigin = await buildTestApp({ ALLOWED_ORIGINS: 'https://files.example.com' });
    try {
      const s = await signedIn(withOrigin.app);
      const res = await withOrigin.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { origin: 'https://files.example.com', 'sec-fetch-site': 'same-origin' },
        cookies: { scs_refresh: s.refresh },
      });
      expect(res.statusCode).toBe(200);
    } finally {
      await withOrigin.app.close();
    }
  });
});

describe('JW-06: a rotation DynamoDB cancels for a transient reason is not reuse', () => {
  const cancelled = (...codes: string[]) => () =>
    new TransactionCanceledException({
      message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`,
      $metadata: { httpStatusCode: 400 },
      CancellationReasons: codes.map((Code) => ({ Code })),
    });

  let f: TestApp;
  let aws: ReturnType<typeof createAwsClients>;
  beforeAll(async () => {
    aws = createAwsClients(t.config);
    f = await buildTestApp({}, { aws });
  });
  afterAll(async () => {
    await f.app.close();
    aws.destroy();
  });

  it.each([
    ['a throttled transaction (ThrottlingError)', cancelled('ThrottlingError', 'None', 'None')],
    ['provisioned throughput exceeded', cancelled('None', 'ProvisionedThroughputExceeded', 'None')],
    ['TransactionInProgressException', () => new TransactionInProgressException({ message: 'in progress', $metadata: { httpStatusCode: 400 } })],
    ['ThrottlingException', () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } })],
  ])('%s answers 503 with Retry-After and keeps the session', async (_name, fault) => {
    const s = await signedIn(f.app);
    failNextTransactions(aws, fault);
    const res = await refreshOn(f.app, s.refresh);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.headers['set-cookie']).toBeUndefined();
    // Nothing was revoked or rotated: the same cookie works once DynamoDB answers again.
    const retry = await refreshOn(f.app, s.refresh);
    expect(retry.statusCode).toBe(200);
    expect((await refreshOn(f.app, refreshCookie(retry))).statusCode).toBe(200);
  });

  it('a transaction conflict (another request on the same items) is retried and succeeds', async () => {
    const s = await signedIn(f.app);
    failNextTransactions(aws, cancelled('TransactionConflict', 'None', 'None'), 2);
    const res = await refreshOn(f.app, s.refresh);
    expect(res.statusCode).toBe(200);
    expect((await refreshOn(f.app, refreshCookie(res))).statusCode).toBe(200);
  });

  it('conflicts that do not stop are a 503, and the session survives them', async () => {
    const s = await signedIn(f.app);
    failNextTransactions(aws, cancelled('TransactionConflict', 'None', 'None'), 3);
    const res = await refreshOn(f.app, s.refresh);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect((await refreshOn(f.app, s.refresh)).statusCode).toBe(200);
  });
});
