import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ServiceBusy } from '@scs/common';
import { AdminSeedRefused, isAdminLikeUsername } from '../src/services/auth-service';
import { PasswordHasher } from '../src/services/passwords';
import { buildTestApp, login, PASSWORD, refreshCookie, register, signedIn, type TestApp, uniqueName } from './helpers';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.app.close());

describe('POST /auth/register', () => {
  it('creates an account and answers {id, username, role}', async () => {
    const username = uniqueName();
    const res = await register(t.app, username);
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), username, role: 'user' });
  });

  it('case-folds the username, and a differently-cased duplicate is USERNAME_TAKEN (409)', async () => {
    const base = uniqueName('Mixed.Case_');
    const res = await register(t.app, base);
    expect(res.statusCode).toBe(201);
    expect(res.json().username).toBe(base.toLowerCase());
    const dup = await register(t.app, base.toUpperCase());
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ statusCode: 409, code: 'USERNAME_TAKEN', error: 'Conflict' });
  });

  it('keeps usernames unique when the same name is registered concurrently', async () => {
    const username = uniqueName();
    const results = await Promise.all(Array.from({ length: 6 }, () => register(t.app, username)));
    expect(results.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(results.filter((r) => r.statusCode === 409)).toHaveLength(5);
  });

  it.each(['admin', 'Administrator', 'root', 'site-admin', 'admin.ops', 'root2', 'e2e.admin', 'sysadmin_1', 'SuperUser'])(
    'reserves the admin-like name %j: registration answers 409 USERNAME_TAKEN',
    async (username) => {
      const res = await register(t.app, username);
      expect(res.statusCode).toBe(409);
      expect(res.json().code).toBe('USERNAME_TAKEN');
    },
  );

  it('does not mistake ordinary names for admin-like ones', () => {
    for (const name of ['badminton.fan', 'rooted', 'administrative', 'maria.admiral', 'groot']) expect(isAdminLikeUsername(name)).toBe(false);
    for (const name of ['admin', 'it-admin', 'root.2', 'webmaster']) expect(isAdminLikeUsername(name)).toBe(true);
  });

  it('reserves the configured admin name (SCS_ADMIN_USERNAME), whatever it looks like', async () => {
    const name = uniqueName('ops');
    const withAdmin = await buildTestApp({ SCS_ADMIN_USERNAME: name.toUpperCase() });
    try {
      expect((await register(withAdmin.app, name)).statusCode).toBe(409);
      expect((await register(withAdmin.app, uniqueName('ops'))).statusCode).toBe(201);
    } finally {
      await withAdmin.app.close();
    }
  });

  it.each(['ab', 'a'.repeat(33), '.starts-with-dot', 'has space', 'semi;colon', 'ünïcode', '../etc', ''])(
    'refuses username %j with INVALID_USERNAME (400)',
    async (username) => {
      const res = await register(t.app, username);
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe(username === '' ? 'VALIDATION_FAILED' : 'INVALID_USERNAME');
    },
  );

  it('AU-02: 12 to 256 characters of anything; 11 or 257 are WEAK_PASSWORD, never truncated', async () => {
    const short = await register(t.app, uniqueName(), 'elevenchars');
    expect(short.statusCode).toBe(400);
    expect(short.json()).toMatchObject({ code: 'WEAK_PASSWORD', message: expect.stringContaining('12') });

    const long = await register(t.app, uniqueName(), 'x'.repeat(257));
    expect(long.statusCode).toBe(400);
    expect(long.json().code).toBe('WEAK_PASSWORD');

    const unicode = '🔐'.repeat(12);
    const name = uniqueName();
    expect((await register(t.app, name, unicode)).statusCode).toBe(201);
    expect((await login(t.app, name, unicode)).statusCode).toBe(200);

    const max = 'é'.repeat(255) + 'z';
    const name2 = uniqueName();
    expect((await register(t.app, name2, max)).statusCode).toBe(201);
    expect((await login(t.app, name2, max)).statusCode).toBe(200);
    // A password that differs only after a would-be truncation point is a different password.
    expect((await login(t.app, name2, 'é'.repeat(255) + 'y')).statusCode).toBe(401);
  });

  it('AU-03: refuses common passwords from the bundled list, case-insensitively', async () => {
    for (const password of ['qwerty123456', 'QAZWSXEDCRFV', 'leavemealone']) {
      const res = await register(t.app, uniqueName(), password);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'WEAK_PASSWORD', message: expect.stringContaining('common') });
    }
  });

  it('AU-01: stores only an argon2id hash at OWASP cost (m >= 19 MiB, t >= 2, p = 1)', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const item = await t.aws.dynamo.send(new GetCommand({ TableName: t.config.USERS_TABLE, Key: { username } }));
    const hash = String(item.Item?.passwordHash);
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=1\$/);
    const [, m, tc] = /m=(\d+),t=(\d+)/.exec(hash) ?? [];
    expect(Number(m)).toBeGreaterThanOrEqual(19_456);
    expect(Number(tc)).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(item.Item)).not.toContain(PASSWORD);
  });
});

describe('POST /auth/login', () => {
  it('answers {accessToken, tokenType, expiresIn, user} and sets the refresh cookie', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const res = await login(t.app, username.toUpperCase());
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      accessToken: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
      tokenType: 'Bearer',
      expiresIn: 900,
      user: { id: expect.any(String), username, role: 'user' },
    });
    expect(res.headers['cache-control']).toBe('no-store');
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^scs_refresh=[\w-]{43};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/auth');
    expect(cookie).not.toContain('Secure');
  });

  it('sets Secure on the cookie unless COOKIE_SECURE=false', async () => {
    const secure = await buildTestApp({ COOKIE_SECURE: 'true' });
    try {
      const username = uniqueName();
      await register(secure.app, username);
      const res = await login(secure.app, username);
      expect(String(res.headers['set-cookie'])).toContain('Secure');
    } finally {
      await secure.app.close();
    }
  });

  it('AU-04: unknown user and wrong password get the same status and body, and both pay for a hash', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const spy = jest.spyOn(PasswordHasher.prototype, 'verify');
    const wrong = await login(t.app, username, 'not the right password');
    const unknown = await login(t.app, uniqueName('nobody'), 'not the right password');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json()).toEqual(wrong.json());
    expect(wrong.json()).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    expect(spy).toHaveBeenCalledTimes(2);
    expect(spy.mock.calls[1]?.[0]).toBeUndefined(); // no stored hash: verified against the dummy hash
    spy.mockRestore();
  });

  it('AU-01: rehashes on login when the configured cost rises', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const stronger = await buildTestApp({ ARGON2_MEMORY_KIB: '24576', ARGON2_TIME_COST: '3' });
    try {
      expect((await login(stronger.app, username)).statusCode).toBe(200);
      const item = await t.aws.dynamo.send(new GetCommand({ TableName: t.config.USERS_TABLE, Key: { username } }));
      expect(String(item.Item?.passwordHash)).toMatch(/^\$argon2id\$v=19\$m=24576,t=3,p=1\$/);
      expect((await login(t.app, username)).statusCode).toBe(200);
    } finally {
      await stronger.app.close();
    }
  });

  it('refuses an oversize password without hashing it', async () => {
    const spy = jest.spyOn(PasswordHasher.prototype, 'verify');
    const res = await login(t.app, uniqueName(), 'p'.repeat(3000));
    expect(res.statusCode).toBe(401);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    const huge = await login(t.app, uniqueName(), 'p'.repeat(5000));
    expect(huge.statusCode).toBe(400);
  });
});

describe('AU-05: failed-login throttling', () => {
  it('AU-05: 24 parallel wrong passwords: at most 5 are checked, the rest get 429, and the right password is then throttled', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const spy = jest.spyOn(PasswordHasher.prototype, 'verify');
    try {
      const results = await Promise.all(Array.from({ length: 24 }, (_, i) => login(t.app, username, `wrong password number ${i}`)));
      const codes = results.map((r) => r.statusCode);
      expect(codes.filter((c) => c === 401).length).toBeLessThanOrEqual(5);
      expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(19);
      expect(codes.every((c) => c === 401 || c === 429)).toBe(true);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(5);
      // Attempts refused because others of the account were being checked (HashGate) did not count:
      // guessing goes on one at a time until exactly 5 have failed.
      let failed = codes.filter((c) => c === 401).length;
      for (let i = 0; i < 6; i += 1) {
        const res = await login(t.app, username, `wrong password again ${i}`);
        if (res.statusCode !== 401) break;
        failed += 1;
      }
      expect(failed).toBe(5);
      expect(spy.mock.calls.length).toBe(5);
      const right = await login(t.app, username);
      expect(right.statusCode).toBe(429);
      expect(right.json().code).toBe('TOO_MANY_ATTEMPTS');
      expect(Number(right.headers['retry-after'])).toBeGreaterThan(0);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(5);
    } finally {
      spy.mockRestore();
    }
  });

  it('AU-05: an attempt that could not be checked (hashing overloaded) does not count against the account', async () => {
    const strict = await buildTestApp({ LOGIN_MAX_FAILURES_PER_ACCOUNT: '1' });
    const spy = jest.spyOn(PasswordHasher.prototype, 'verify').mockRejectedValueOnce(new ServiceBusy());
    try {
      const username = uniqueName();
      await register(strict.app, username);
      const busy = await login(strict.app, username);
      expect(busy.statusCode).toBe(503);
      expect((await login(strict.app, username)).statusCode).toBe(200);
    } finally {
      spy.mockRestore();
      await strict.app.close();
    }
  });

  it('AU-05: a counter written before attempts were counted does not lock the account', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const windowEnds = Math.floor(Date.now() / 1000) + 600;
    await t.aws.dynamo.send(
      new PutCommand({ TableName: t.config.THROTTLE_TABLE, Item: { pk: `acct#${username}`, failures: 2, windowEnds, expiresAt: windowEnds + 60 } }),
    );
    expect((await login(t.app, username)).statusCode).toBe(200);
  });

  it('AU-05: a successful login does not count against its address', async () => {
    const strict = await buildTestApp({ LOGIN_MAX_FAILURES_PER_ADDRESS: '2' });
    try {
      const ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
      const username = uniqueName();
      await register(strict.app, username);
      for (let i = 0; i < 4; i += 1) expect((await login(strict.app, username, PASSWORD, { 'x-forwarded-for': ip })).statusCode).toBe(200);
    } finally {
      await strict.app.close();
    }
  });

  it('throttles an account after 5 failures, even for the right password, with Retry-After; others unaffected', async () => {
    const victim = uniqueName();
    const bystander = uniqueName();
    await register(t.app, victim);
    await register(t.app, bystander);
    for (let i = 0; i < 5; i += 1) {
      const res = await login(t.app, victim, `wrong password ${i}`, { 'x-forwarded-for': `203.0.113.${i}` });
      expect(res.statusCode).toBe(401);
    }
    const blocked = await login(t.app, victim, PASSWORD, { 'x-forwarded-for': '203.0.113.99' });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({ statusCode: 429, code: 'TOO_MANY_ATTEMPTS', error: 'Too Many Requests' });
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect((await login(t.app, bystander, PASSWORD, { 'x-forwarded-for': '203.0.113.99' })).statusCode).toBe(200);
  });

  it('lifts the throttle when the window has passed (no permanent lockout)', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const clocked = await buildTestApp({ LOGIN_THROTTLE_WINDOW_SECONDS: '60' }, { now: () => new Date(now) });
    try {
      const username = uniqueName();
      await register(clocked.app, username);
      for (let i = 0; i < 5; i += 1) await login(clocked.app, username, 'wrong password!!');
      expect((await login(clocked.app, username)).statusCode).toBe(429);
      now += 61_000;
      expect((await login(clocked.app, username)).statusCode).toBe(200);
    } finally {
      await clocked.app.close();
    }
  });

  it('throttles one client address that fails across many accounts', async () => {
    const strict = await buildTestApp({ LOGIN_MAX_FAILURES_PER_ADDRESS: '3' });
    try {
      const ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
      for (let i = 0; i < 3; i += 1) {
        expect((await login(strict.app, uniqueName('spray'), 'wrong password!!', { 'x-forwarded-for': ip })).statusCode).toBe(401);
      }
      const username = uniqueName();
      await register(strict.app, username);
      const res = await login(strict.app, username, PASSWORD, { 'x-forwarded-for': ip });
      expect(res.statusCode).toBe(429);
      expect(res.json().code).toBe('TOO_MANY_ATTEMPTS');
      expect((await login(strict.app, username, PASSWORD, { 'x-forwarded-for': '192.0.2.1' })).statusCode).toBe(200);
    } finally {
      await strict.app.close();
    }
  });

  it('AU-06: X-Forwarded-For from an untrusted peer is ignored (the peer address is throttled)', async () => {
    const strict = await buildTestApp({ LOGIN_MAX_FAILURES_PER_ADDRESS: '2' });
    try {
      const peer = `192.0.2.${Math.floor(Math.random() * 250)}`;
      for (let i = 0; i < 2; i += 1) {
        await strict.app.inject({
          method: 'POST',
          url: '/auth/login',
          remoteAddress: peer,
          headers: { 'x-forwarded-for': `10.9.9.${i}` },
          payload: { username: uniqueName(), password: 'wrong password!!' },
        });
      }
      const res = await strict.app.inject({
        method: 'POST',
        url: '/auth/login',
        remoteAddress: peer,
        headers: { 'x-forwarded-for': '10.9.9.200' },
        payload: { username: uniqueName(), password: 'wrong password!!' },
      });
      expect(res.statusCode).toBe(429);
    } finally {
      await strict.app.close();
    }
  });
});

describe('seeding the admin (SCS_ADMIN_USERNAME / SCS_ADMIN_PASSWORD)', () => {
  const ADMIN_PASSWORD = 'operator pass phrase 2030';
  const loginAs = (app: TestApp['app'], username: string, password: string) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } });
  const refreshWith = (app: TestApp['app'], token: string | undefined) =>
    app.inject({ method: 'POST', url: '/auth/refresh', cookies: { scs_refresh: token ?? '' } });

  it('creates the admin when the name is free; seeding again with the same password changes nothing', async () => {
    const name = uniqueName('admin');
    expect(await t.app.authService.seedAdmin(name, ADMIN_PASSWORD)).toMatchObject({ outcome: 'created', user: { role: 'admin' } });
    const session = await loginAs(t.app, name, ADMIN_PASSWORD);
    expect(session.json().user.role).toBe('admin');
    expect((await t.app.authService.seedAdmin(name, ADMIN_PASSWORD)).outcome).toBe('unchanged');
    // A restart with the same settings keeps the admin signed in.
    expect((await refreshWith(t.app, refreshCookie(session))).statusCode).toBe(200);
  });

  it('a new admin password replaces the old one and ends every session of the admin', async () => {
    const name = uniqueName('admin');
    await t.app.authService.seedAdmin(name, ADMIN_PASSWORD);
    const session = await loginAs(t.app, name, ADMIN_PASSWORD);
    expect((await t.app.authService.seedAdmin(name, 'a different operator phrase')).outcome).toBe('password_changed');
    expect((await refreshWith(t.app, refreshCookie(session))).statusCode).toBe(401);
    expect((await loginAs(t.app, name, ADMIN_PASSWORD)).statusCode).toBe(401);
    expect((await loginAs(t.app, name, 'a different operator phrase')).json().user.role).toBe('admin');
  });

  it("never promotes a user's account by default: seeding is refused and the user's sessions stay user", async () => {
    const victim = await signedIn(t.app);
    await expect(t.app.authService.seedAdmin(victim.username, ADMIN_PASSWORD)).rejects.toThrow(AdminSeedRefused);
    await expect(t.app.authService.seedAdmin(victim.username, ADMIN_PASSWORD)).rejects.toThrow(/SCS_ADMIN_PROMOTE_EXISTING=true/);
    const refreshed = await refreshWith(t.app, victim.refresh);
    expect(refreshed.statusCode).toBe(200);
    expect(refreshed.json().user.role).toBe('user');
    expect((await loginAs(t.app, victim.username, ADMIN_PASSWORD)).statusCode).toBe(401);
    expect((await login(t.app, victim.username)).json().user.role).toBe('user');
  });

  it('with SCS_ADMIN_PROMOTE_EXISTING=true it promotes the account and ends all its sessions: an old cookie never yields admin', async () => {
    const promoting = await buildTestApp({ SCS_ADMIN_PROMOTE_EXISTING: 'true' });
    try {
      const user = await signedIn(promoting.app);
      const second = refreshCookie(await login(promoting.app, user.username));
      expect(await promoting.app.authService.seedAdmin(user.username, ADMIN_PASSWORD)).toMatchObject({ outcome: 'promoted', user: { role: 'admin' } });
      for (const cookie of [user.refresh, second]) {
        const res = await refreshWith(promoting.app, cookie);
        expect(res.statusCode).toBe(401);
      }
      expect((await login(promoting.app, user.username)).statusCode).toBe(401);
      expect((await loginAs(promoting.app, user.username, ADMIN_PASSWORD)).json().user.role).toBe('admin');
    } finally {
      await promoting.app.close();
    }
  });

  it('a session never changes role: an account whose role changed in the table must sign in again', async () => {
    const s = await signedIn(t.app);
    await t.aws.dynamo.send(
      new UpdateCommand({
        TableName: t.config.USERS_TABLE,
        Key: { username: s.username },
        UpdateExpression: 'SET #role = :admin',
        ExpressionAttributeNames: { '#role': 'role' },
        ExpressionAttributeValues: { ':admin': 'admin' },
      }),
    );
    const res = await refreshWith(t.app, s.refresh);
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe('INVALID_REFRESH_TOKEN');
  });
});
