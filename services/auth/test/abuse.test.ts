import type { LightMyRequestResponse } from 'fastify';
import { PasswordHasher } from '../src/services/passwords';
import { buildTestApp, PASSWORD, register, type TestApp, uniqueName } from './helpers';

/**
 * Abuse by someone who knows a user's name, or by a flood: locking another user out, filling the
 * password-hash pool, forging proxy headers. Every client address here is one of this file's own.
 */
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.app.close());

// Addresses of this file's own (198.18.0.0/15, benchmarking): the throttle counts are shared by every test file.
const block = Math.floor(Math.random() * 250);
let lastOctet = 0;
const newAddress = () => `198.19.${block}.${(lastOctet += 1)}`;

const deviceCookie = (res: LightMyRequestResponse) => res.cookies.find((c) => c.name === 'scs_device');

const loginFrom = (app: TestApp['app'], username: string, address: string, opts: { password?: string; device?: string } = {}) =>
  app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { username, password: opts.password ?? PASSWORD },
    headers: { 'x-forwarded-for': address },
    ...(opts.device ? { cookies: { scs_device: opts.device } } : {}),
  });

async function lockOut(app: TestApp['app'], username: string, attacker: string): Promise<void> {
  for (let i = 0; i < 5; i += 1) expect((await loginFrom(app, username, attacker, { password: `a wrong guess number ${i}` })).statusCode).toBe(401);
  expect((await loginFrom(app, username, attacker)).statusCode).toBe(429);
}

describe('AU-05: device cookies (OWASP): a locked account still lets its owner in from a known device', () => {
  it('AU-05: an attacker locks the account from another address; the owner with the device cookie still signs in, without it the owner is throttled', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const home = newAddress();
    const first = await loginFrom(t.app, username, home);
    expect(first.statusCode).toBe(200);
    const device = deviceCookie(first);
    expect(device?.value).toMatch(/^[\w-]{43}$/);
    expect(device).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/auth', maxAge: t.config.DEVICE_COOKIE_MAX_AGE_SECONDS });
    expect(device?.secure).toBeFalsy();

    await lockOut(t.app, username, newAddress());

    const known = await loginFrom(t.app, username, home, { device: device?.value ?? '' });
    expect(known.statusCode).toBe(200);
    // A known device keeps its cookie: no new one is issued.
    expect(deviceCookie(known)).toBeUndefined();
    // The device, not the address: the same cookie works from elsewhere (a phone on another network).
    expect((await loginFrom(t.app, username, newAddress(), { device: device?.value ?? '' })).statusCode).toBe(200);

    const unknown = await loginFrom(t.app, username, home);
    expect(unknown.statusCode).toBe(429);
    expect(unknown.json()).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
    expect(Number(unknown.headers['retry-after'])).toBeGreaterThan(0);
    // The owner's successes did not lift the lock for everyone else.
    expect((await loginFrom(t.app, username, newAddress())).statusCode).toBe(429);
  });

  it('AU-05: failures from a known device are counted per device: after 5 that device is throttled too, the account is not', async () => {
    const username = uniqueName();
    await register(t.app, username);
    const device = deviceCookie(await loginFrom(t.app, username, newAddress()))?.value ?? '';
    const stolen = newAddress();
    for (let i = 0; i < 5; i += 1) {
      expect((await loginFrom(t.app, username, stolen, { device, password: `a wrong guess number ${i}` })).statusCode).toBe(401);
    }
    const locked = await loginFrom(t.app, username, stolen, { device });
    expect(locked.statusCode).toBe(429);
    expect(locked.json()).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
    // Those failures were the device's, not the account's: other devices are not locked by them.
    expect((await loginFrom(t.app, username, newAddress())).statusCode).toBe(200);
  });

  it("AU-05: another account's device cookie, an unknown or a malformed one is no known device: it is throttled with the account", async () => {
    const [victim, other] = [uniqueName(), uniqueName()];
    await register(t.app, victim);
    await register(t.app, other);
    const otherDevice = deviceCookie(await loginFrom(t.app, other, newAddress()))?.value ?? '';
    await lockOut(t.app, victim, newAddress());
    for (const device of [otherDevice, 'x'.repeat(43), 'y'.repeat(500)]) {
      expect((await loginFrom(t.app, victim, newAddress(), { device })).statusCode).toBe(429);
    }
  });

  it('AU-05: the device cookie is Secure unless COOKIE_SECURE=false', async () => {
    const secure = await buildTestApp({ COOKIE_SECURE: 'true' });
    try {
      const username = uniqueName();
      await register(secure.app, username);
      expect(deviceCookie(await loginFrom(secure.app, username, newAddress()))?.secure).toBe(true);
    } finally {
      await secure.app.close();
    }
  });
});

/**
 * Holds every call of a PasswordHasher method whose password is `password` until `release()`, and
 * resolves `settledOrHeld` once each of `expected` requests has either been answered or is held
 * there: the moment a flood is at its peak, with no timing involved.
 */
function holdHashes(method: 'verify' | 'hash', password: string, expected: number) {
  let held = 0;
  let settled = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const settledOrHeld = new Promise<void>((resolve) => (reached = resolve));
  const check = () => {
    if (held + settled >= expected) reached();
  };
  const original = PasswordHasher.prototype[method] as (this: PasswordHasher, ...args: string[]) => Promise<unknown>;
  const spy = jest.spyOn(PasswordHasher.prototype, method).mockImplementation(async function (this: PasswordHasher, ...args: unknown[]) {
    const pw = method === 'verify' ? args[1] : args[0];
    if (pw === password) {
      held += 1;
      check();
      await released;
    }
    return original.apply(this, args as string[]) as never;
  });
  const track = <T>(p: Promise<T>) =>
    p.then((value) => {
      settled += 1;
      check();
      return value;
    });
  return { spy, release: () => release(), settledOrHeld, track, held: () => held };
}

describe('AU-05: a flood of sign-ins is answered 429 before the hash, never 503 after it', () => {
  it('AU-05: 30 parallel sign-ins of one account: one hash in flight, the other 29 get 429 with Retry-After at once, none 503; another user signs in meanwhile', async () => {
    // A short hash queue: before the flood was bounded per account, 30 sign-ins at once overflowed it (503).
    const small = await buildTestApp({ HASH_QUEUE_LIMIT: '4', HASH_CONCURRENCY: '2', HASH_CONCURRENCY_PER_ACCOUNT: '1' });
    const [flooder, bystander] = [uniqueName(), uniqueName()];
    const bystanderPassword = 'a bystander pass phrase 77';
    await register(small.app, flooder);
    await register(small.app, bystander, bystanderPassword);
    const hold = holdHashes('verify', PASSWORD, 30);
    try {
      const address = newAddress();
      const flood = Promise.all(Array.from({ length: 30 }, () => hold.track(loginFrom(small.app, flooder, address))));
      await hold.settledOrHeld;
      // At the flood's peak: one of its hashes is in flight, every other sign-in was already answered...
      expect(hold.held()).toBe(1);
      // ...and another user signs in beside it.
      expect((await loginFrom(small.app, bystander, newAddress(), { password: bystanderPassword })).statusCode).toBe(200);
      hold.release();
      const results = await flood;
      const codes = results.map((r) => r.statusCode);
      expect(codes.filter((c) => c === 200)).toHaveLength(1);
      const refused = results.filter((r) => r.statusCode === 429);
      expect(refused).toHaveLength(29);
      for (const r of refused) {
        expect(r.json()).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
        expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
      }
      // Refused sign-ins were not failures: the account is not locked.
      expect((await loginFrom(small.app, flooder, newAddress())).statusCode).toBe(200);
    } finally {
      hold.release();
      hold.spy.mockRestore();
      await small.app.close();
    }
  });

  it('parallel registrations from one address beyond HASH_CONCURRENCY_PER_ADDRESS are 429 RATE_LIMITED before the hash', async () => {
    const small = await buildTestApp({ HASH_CONCURRENCY_PER_ADDRESS: '2' });
    const hold = holdHashes('hash', PASSWORD, 12);
    try {
      const address = newAddress();
      const all = Promise.all(
        Array.from({ length: 12 }, () =>
          hold.track(
            small.app.inject({ method: 'POST', url: '/auth/register', payload: { username: uniqueName(), password: PASSWORD }, headers: { 'x-forwarded-for': address } }),
          ),
        ),
      );
      await hold.settledOrHeld;
      expect(hold.held()).toBe(2);
      hold.release();
      const results = await all;
      expect(results.filter((r) => r.statusCode === 201)).toHaveLength(2);
      const refused = results.filter((r) => r.statusCode === 429);
      expect(refused).toHaveLength(10);
      expect(refused[0]?.json()).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(refused[0]?.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      hold.release();
      hold.spy.mockRestore();
      await small.app.close();
    }
  });
});

describe('registration per address', () => {
  it('is bounded per hour as well as per minute (429 RATE_LIMITED, Retry-After up to an hour)', async () => {
    const hourly = await buildTestApp({ REGISTER_RATE_LIMIT_PER_HOUR: '2' });
    try {
      const address = newAddress();
      const codes = [];
      let last: LightMyRequestResponse | undefined;
      for (let i = 0; i < 3; i += 1) {
        last = await hourly.app.inject({ method: 'POST', url: '/auth/register', payload: { username: uniqueName(), password: PASSWORD }, headers: { 'x-forwarded-for': address } });
        codes.push(last.statusCode);
      }
      expect(codes).toEqual([201, 201, 429]);
      expect(last?.json()).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(last?.headers['retry-after'])).toBeGreaterThan(60);
      expect(Number(last?.headers['retry-after'])).toBeLessThanOrEqual(3600);
      // Another address is not affected.
      const elsewhere = await hourly.app.inject({ method: 'POST', url: '/auth/register', payload: { username: uniqueName(), password: PASSWORD }, headers: { 'x-forwarded-for': newAddress() } });
      expect(elsewhere.statusCode).toBe(201);
    } finally {
      await hourly.app.close();
    }
  });
});

describe('AU-06: forwarded headers are believed only from TRUSTED_PROXIES', () => {
  const refreshWith = (app: TestApp['app'], remoteAddress: string, headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress, headers, cookies: { scs_refresh: 'not-a-session' } });

  it('AU-06, FU-12: X-Forwarded-Host passes the same-site check from a trusted proxy, not from any other peer', async () => {
    const headers = { host: 'auth.internal:3001', origin: 'https://files.example.com', 'x-forwarded-host': 'files.example.com' };
    // From a peer that is not a proxy the forged X-Forwarded-Host is ignored: a cross-site Origin.
    const direct = await refreshWith(t.app, '192.0.2.10', headers);
    expect(direct.statusCode).toBe(403);
    expect(direct.json()).toMatchObject({ code: 'CROSS_SITE_REQUEST' });
    // From the proxy (loopback in the default TRUSTED_PROXIES) the same request is same-site: it gets
    // as far as the session check.
    const proxied = await refreshWith(t.app, '127.0.0.1', headers);
    expect(proxied.statusCode).toBe(401);
    expect(proxied.json()).toMatchObject({ code: 'INVALID_REFRESH_TOKEN' });
  });

  it('AU-06: X-Forwarded-For from an untrusted peer does not move its throttle elsewhere; from a trusted proxy it does', async () => {
    const strict = await buildTestApp({ LOGIN_MAX_FAILURES_PER_ADDRESS: '2' });
    try {
      const guess = (remoteAddress: string, forwardedFor: string) =>
        strict.app.inject({
          method: 'POST',
          url: '/auth/login',
          remoteAddress,
          headers: { 'x-forwarded-for': forwardedFor },
          payload: { username: uniqueName(), password: 'a wrong guess!!' },
        });
      const peer = '192.0.2.77';
      expect((await guess(peer, newAddress())).statusCode).toBe(401);
      expect((await guess(peer, newAddress())).statusCode).toBe(401);
      expect((await guess(peer, newAddress())).statusCode).toBe(429);
      // Through the proxy each forwarded address is counted as itself.
      const client = newAddress();
      expect((await guess('127.0.0.1', client)).statusCode).toBe(401);
      expect((await guess('127.0.0.1', client)).statusCode).toBe(401);
      expect((await guess('127.0.0.1', client)).statusCode).toBe(429);
      expect((await guess('127.0.0.1', newAddress())).statusCode).toBe(401);
    } finally {
      await strict.app.close();
    }
  });
});
