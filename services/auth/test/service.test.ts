import { createAwsClients } from '@scs/common';
import { buildTestApp, login, PASSWORD, register, signedIn, type TestApp, uniqueName } from './helpers';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.app.close());

describe('service surface', () => {
  it('GET /health, /ready and /metrics answer', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/health' })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    await login(t.app, uniqueName(), 'wrong password!!');
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/http_request_duration_seconds_bucket\{.*route="\/auth\/login"/);
    expect(metrics.body).toMatch(/scs_auth_logins_total\{outcome="unknown_user",service="auth"\} \d+/);
  });

  it('WB-03, WB-01, DL-02: strict CSP, HSTS and nosniff on every response', async () => {
    for (const url of ['/auth/jwks.json', '/auth/me', '/nope']) {
      const res = await t.app.inject({ method: 'GET', url });
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toMatch(/default-src 'none'/);
      expect(csp).toContain("object-src 'none'");
      expect(csp).toContain("base-uri 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    }
  });

  it('serves the OpenAPI document at /auth/docs', async () => {
    const ui = await t.app.inject({ method: 'GET', url: '/auth/docs' });
    expect([200, 302]).toContain(ui.statusCode);
    const doc = await t.app.inject({ method: 'GET', url: '/auth/docs/json' });
    expect(doc.statusCode).toBe(200);
    expect(Object.keys(doc.json().paths)).toEqual(
      expect.arrayContaining(['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout', '/auth/me', '/auth/jwks.json']),
    );
  });

  it('unknown routes are a JSON 404 with a code', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/nothing-here' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found' });
  });
});

describe('bad input is a clear 4xx, never a 5xx', () => {
  const post = (payload: string, contentType = 'application/json') =>
    t.app.inject({ method: 'POST', url: '/auth/login', payload, headers: { 'content-type': contentType } });

  it.each([
    ['broken JSON', '{"username":', 'application/json', 400, 'BAD_JSON'],
    ['empty body', '', 'application/json', 400, 'BAD_JSON'],
    ['missing password', '{"username":"alice"}', 'application/json', 400, 'VALIDATION_FAILED'],
    ['wrong types', '{"username":{"a":1},"password":["x"]}', 'application/json', 400, 'VALIDATION_FAILED'],
    ['extra field', '{"username":"alice","password":"x","role":"admin"}', 'application/json', 400, 'VALIDATION_FAILED'],
    ['FU-13 __proto__ key', '{"username":"alice","password":"xxxxxxxxxxxxxxx","__proto__":{"role":"admin"}}', 'application/json', 400, undefined],
    ['form encoding', 'username=alice&password=x', 'application/x-www-form-urlencoded', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['FX-01 a tab before the type is still validated', '{"username":"alice"}', '\tapplication/json', 400, 'VALIDATION_FAILED'],
    ['FX-01 odd casing is still validated', '{"username":"alice"}', 'APPLICATION/JSON', 400, 'VALIDATION_FAILED'],
    ['FX-01 a leading space is still validated', '{"username":"alice"}', ' application/json', 400, 'VALIDATION_FAILED'],
    ['FX-01 text/plain is not parsed as JSON', '{"username":"alice","password":"xxxxxxxxxxxxxxx"}', 'text/plain', 400, 'VALIDATION_FAILED'],
  ])('%s', async (_name, payload, contentType, status, code) => {
    const res = await post(payload, contentType);
    expect(res.statusCode).toBe(status);
    if (code) expect(res.json().code).toBe(code);
    expect(res.json()).toHaveProperty('message');
  });

  it('a body over the limit is 413 BODY_TOO_LARGE', async () => {
    const res = await post(JSON.stringify({ username: 'a', password: 'x'.repeat(100_000) }));
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('BODY_TOO_LARGE');
  });

  it('a register flood from one address gets 429 RATE_LIMITED with Retry-After', async () => {
    const limited = await buildTestApp({ REGISTER_RATE_LIMIT_PER_MINUTE: "2" });
    // The count is shared by every instance on the emulator: an address of this test's own.
    const from = { 'x-forwarded-for': `198.18.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}` };
    const registerFrom = (username: string, password = PASSWORD) =>
      limited.app.inject({ method: 'POST', url: '/auth/register', payload: { username, password }, headers: from });
    try {
      const codes = [];
      for (let i = 0; i < 3; i += 1) codes.push((await registerFrom(uniqueName(), 'short')).statusCode);
      expect(codes).toEqual([400, 400, 429]);
      const res = await registerFrom(uniqueName());
      expect(res.json().code).toBe('RATE_LIMITED');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await limited.app.close();
    }
  });
});

describe('audit log', () => {
  it('writes one structured line per security event, with user, address and request id, and no secrets', async () => {
    const s = await signedIn(t.app);
    await login(t.app, s.username, 'wrong password!!', { 'x-forwarded-for': '203.0.113.7' });
    await t.app.inject({ method: 'POST', url: '/auth/logout', cookies: { scs_refresh: s.refresh } });
    const audit = t.logs.filter((l) => l.audit).map((l) => l.audit as Record<string, unknown>);
    const mine = audit.filter((a) => a.userId === s.userId);
    expect(mine.map((a) => `${a.event}:${a.outcome}`)).toEqual(
      expect.arrayContaining(['register:success', 'login:success', 'login:failure', 'logout:success']),
    );
    const failure = mine.find((a) => a.event === 'login' && a.outcome === 'failure');
    expect(failure).toMatchObject({ reason: 'wrong_password', clientIp: '203.0.113.7', requestId: expect.any(String) });
    const all = t.rawLogs.join('\n');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain('wrong password!!');
    expect(all).not.toContain(s.refresh);
    expect(all).not.toContain(s.accessToken);
  });
});

describe('dependency outage', () => {
  it('answers 503 STORAGE_UNAVAILABLE with Retry-After when DynamoDB is down, and /ready says so', async () => {
    const healthy = createAwsClients(t.config);
    const dead = createAwsClients({ ...t.config, AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: 1 });
    const broken = await buildTestApp({}, { aws: { ...healthy, dynamo: dead.dynamo } });
    try {
      const res = await login(broken.app, uniqueName(), PASSWORD);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ statusCode: 503, code: 'STORAGE_UNAVAILABLE' });
      expect(res.headers['retry-after']).toBeDefined();
      const reg = await register(broken.app, uniqueName());
      expect(reg.statusCode).toBe(503);
      expect((await broken.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(503);
      expect((await broken.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    } finally {
      await broken.app.close();
      healthy.destroy();
      dead.destroy();
    }
  });
});
