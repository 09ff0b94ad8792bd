import { buildTestApp, refreshCookie, signedIn, type TestApp } from './helpers';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.app.close());

const refresh = (token: string | undefined, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/auth/refresh', headers, ...(token ? { cookies: { scs_refresh: token } } : {}) });
const logout = (token: string | undefined, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/auth/logout', headers, ...(token ? { cookies: { scs_refresh: token } } : {}) });

describe('refresh and logout', () => {
  it('POST /auth/refresh answers like login and rotates the cookie', async () => {
    const s = await signedIn(t.app);
    const res = await refresh(s.refresh);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { id: s.userId, username: s.username } });
    const next = refreshCookie(res);
    expect(next).toBeDefined();
    expect(next).not.toBe(s.refresh);
    const meRes = await t.app.inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: `Bearer ${res.json().accessToken}` },
    });
    expect(meRes.statusCode).toBe(200);
  });

  it('JW-06: reusing a rotated refresh token is 401 and revokes the whole family', async () => {
    const s = await signedIn(t.app);
    const first = await refresh(s.refresh);
    const second = refreshCookie(first);
    expect(first.statusCode).toBe(200);
    const reuse = await refresh(s.refresh);
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().code).toBe('INVALID_REFRESH_TOKEN');
    // The legitimate successor is now dead too: the thief and the owner both have to sign in again.
    expect((await refresh(second)).statusCode).toBe(401);
    const line = t.logs.find((l) => (l.audit as { event?: string } | undefined)?.event === 'refresh_token_reuse');
    expect(line?.audit).toMatchObject({ outcome: 'denied', userId: s.userId });
  });

  it('JW-06: two concurrent refreshes with one token: at most one wins and the family is revoked', async () => {
    const s = await signedIn(t.app);
    const results = await Promise.all([refresh(s.refresh), refresh(s.refresh)]);
    expect(results.filter((r) => r.statusCode === 200).length).toBeLessThanOrEqual(1);
    for (const r of results.filter((x) => x.statusCode === 200)) expect((await refresh(refreshCookie(r))).statusCode).toBe(401);
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

  it('logout without a session still answers 204', async () => {
    expect((await logout(undefined)).statusCode).toBe(204);
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
