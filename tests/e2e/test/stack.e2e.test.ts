import { randomBytes } from 'node:crypto';
import { isPortFree } from '@scs/local-stack/stack/ports';
import { freeStackPorts, groupAlive, READY_LINE, refreshCookie, type RunningStack, type StackPorts, startStack, stopStack } from '@scs/testing/stack';

/**
 * END TO END: the real `npm start` (install check, build, emulator, provisioning, auth, upload,
 * backup-sync, gateway) on free ports, so it never collides with a developer's own stack, driven
 * through the gateway with fetch the way the browser UI does; then stopped with SIGTERM to its
 * process group, checked for leftovers, and started a second time on the same ports.
 */
const ADMIN = { username: 'e2e.admin', password: 'operator pass phrase for e2e' };
const ADMIN_ENV = { SCS_ADMIN_USERNAME: ADMIN.username, SCS_ADMIN_PASSWORD: ADMIN.password };
const START_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 15_000;

type Ports = StackPorts;

describe('e2e: npm start, the auth API through the gateway, stop and restart', () => {
  let ports: Ports;
  let stack: RunningStack | undefined;
  let base: string;

  beforeAll(async () => {
    ports = await freeStackPorts();
    stack = await startStack(ports, ADMIN_ENV, START_TIMEOUT_MS);
    expect(READY_LINE.exec(stack.output())?.[1]).toBe(`http://localhost:${ports.GATEWAY_PORT}`);
    base = `http://127.0.0.1:${ports.GATEWAY_PORT}`;
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    // Whatever happened above, leave nothing running.
    if (stack?.child.pid && groupAlive(stack.child.pid)) process.kill(-stack.child.pid, 'SIGKILL');
  });

  // What a same-origin browser request carries; the auth service refuses cross-site cookie requests.
  const browser = (cookie?: string): Record<string, string> => ({ origin: base, ...(cookie ? { cookie } : {}) });
  const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const post = (path: string, headers: Record<string, string>) => fetch(`${base}${path}`, { method: 'POST', headers });

  const username = `e2e.user.${Date.now().toString(36)}`;
  const password = 'Tangerine-Kettle-4471-quietly';
  let accessToken: string;
  let cookie: string;

  it('registers a user (201) and refuses the same username again (409 USERNAME_TAKEN)', async () => {
    const res = await postJson('/auth/register', { username, password });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ id: expect.any(String), username, role: 'user' });

    const again = await postJson('/auth/register', { username, password });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ statusCode: 409, code: 'USERNAME_TAKEN' });
  });

  it('logs in: a bearer token and an HttpOnly, SameSite=Strict, Path=/auth refresh cookie, not Secure locally', async () => {
    const res = await postJson('/auth/login', { username, password }, browser());
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accessToken: string; tokenType: string; expiresIn: number; user: { username: string; role: string } };
    expect(body).toMatchObject({ accessToken: expect.any(String), tokenType: 'Bearer', expiresIn: expect.any(Number), user: { username, role: 'user' } });
    accessToken = body.accessToken;

    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('scs_refresh=') && /;\s*path=\/auth/i.test(c));
    expect(setCookie).toBeDefined();
    expect(setCookie).toMatch(/;\s*HttpOnly/i);
    expect(setCookie).toMatch(/;\s*SameSite=Strict/i);
    expect(setCookie).not.toMatch(/;\s*Secure/i);
    cookie = refreshCookie(res)!;
  });

  it('GET /auth/me with the bearer token', async () => {
    const res = await fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: expect.any(String), username, role: 'user', createdAt: expect.any(String) });
    expect((await fetch(`${base}/auth/me`)).status).toBe(401);
  });

  it('GET /auth/jwks.json: public keys with a kid, no private parts', async () => {
    const res = await fetch(`${base}/auth/jwks.json`);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key.kid).toEqual(expect.any(String));
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(secret);
    }
  });

  it('refresh rotates the cookie; reusing an old one once the session moved on is refused and revokes the new one too', async () => {
    const res = await post('/auth/refresh', browser(cookie));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accessToken: expect.any(String), tokenType: 'Bearer' });
    const rotated = refreshCookie(res);
    expect(rotated).toBeDefined();
    expect(rotated).not.toBe(cookie);
    const next = await post('/auth/refresh', browser(rotated));
    expect(next.status).toBe(200);

    expect((await post('/auth/refresh', browser(cookie))).status).toBe(401);
    expect((await post('/auth/refresh', browser(refreshCookie(next)))).status).toBe(401);
  });

  it('logout: 204, cookie cleared, session revoked', async () => {
    const login = await postJson('/auth/login', { username, password }, browser());
    expect(login.status).toBe(200);
    const fresh = refreshCookie(login)!;

    const res = await post('/auth/logout', browser(fresh));
    expect(res.status).toBe(204);
    const cleared = res.headers.getSetCookie().find((c) => /;\s*path=\/auth/i.test(c));
    expect(cleared).toMatch(/^[^=]+=;|max-age=0|expires=thu, 01 jan 1970/i);
    expect((await post('/auth/refresh', browser(fresh))).status).toBe(401);
  });

  it('the admin from SCS_ADMIN_USERNAME / SCS_ADMIN_PASSWORD logs in with role admin', async () => {
    const res = await postJson('/auth/login', ADMIN, browser());
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ user: { username: ADMIN.username, role: 'admin' } });
  });

  it('every service answers /health on its own port, and the gateway on its own', async () => {
    for (const port of [ports.AUTH_PORT, ports.UPLOAD_PORT, ports.BACKUP_PORT, ports.GATEWAY_PORT]) {
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    }
  });

  it.each([
    ['/api/files', 'UPLOAD_PORT'],
    ['/api/backup/status', 'BACKUP_PORT'],
  ] as const)('the gateway routes %s to the service on %s', async (path, port) => {
    const viaGateway = await fetch(`${base}${path}`);
    const direct = await fetch(`http://127.0.0.1:${ports[port]}${path}`);
    // Authenticated routes: 401 without a token (404 while a service has not shipped the route); never 502/503.
    expect([401, 404]).toContain(viaGateway.status);
    expect(viaGateway.status).toBe(direct.status);
    expect(await viaGateway.json()).toMatchObject({ statusCode: viaGateway.status, code: expect.any(String) });
  });

  const signedIn = async (name: string) => {
    const credentials = { username: `${name}.${Date.now().toString(36)}`, password };
    expect((await postJson('/auth/register', credentials)).status).toBe(201);
    const res = await postJson('/auth/login', credentials);
    expect(res.status).toBe(200);
    return { authorization: `Bearer ${((await res.json()) as { accessToken: string }).accessToken}` };
  };

  it("issue reproduction: user A's refused 3 MiB holiday.mp4 never stalls user B's GET /api/files/usage (no 66 s wait, no 502)", async () => {
    const [userA, userB] = [await signedIn('e2e.a'), await signedIn('e2e.b')];
    for (let round = 0; round < 3; round++) {
      const form = new FormData();
      form.append('file', new Blob([randomBytes(3 * 1024 * 1024)]), 'holiday.mp4');
      const refused = await fetch(`${base}/api/files`, { method: 'POST', headers: userA, body: form, signal: AbortSignal.timeout(20_000) });
      expect(refused.status).toBe(415);
      expect(await refused.json()).toMatchObject({ code: 'UNSUPPORTED_FILE_TYPE' });
      const usage = await fetch(`${base}/api/files/usage`, { headers: userB, signal: AbortSignal.timeout(20_000) });
      expect(usage.status).toBe(200);
      expect(usage.headers.get('cache-control')).toBe('no-store');
      expect(await usage.json()).toMatchObject({ usedBytes: 0 });
    }
  });

  it('/metrics is not reachable through the gateway (however encoded); each service still serves it on its own port', async () => {
    for (const path of ['/metrics', '/%6Detrics', '/metrics?format=text']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ statusCode: 404, code: 'NOT_FOUND' });
    }
    for (const port of [ports.AUTH_PORT, ports.UPLOAD_PORT, ports.BACKUP_PORT]) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('process_cpu_user_seconds_total');
    }
  });

  it(
    'SIGTERM to the process group stops every process within 15 s and frees every port; a second start right after works',
    async () => {
      const first = await stopStack(stack!, STOP_TIMEOUT_MS + 5_000);
      expect(first.ms).toBeLessThan(STOP_TIMEOUT_MS);
      expect(first.groupGone).toBe(true);
      expect(stack!.output()).toMatch(/stack\s+\| stopped\n/);
      for (const port of Object.values(ports)) expect(await isPortFree(port, '127.0.0.1')).toBe(true);

      stack = await startStack(ports, ADMIN_ENV, START_TIMEOUT_MS);
      expect((await fetch(`${base}/health`)).status).toBe(200);
      // A fresh emulator: provisioned and the admin seeded again.
      expect((await postJson('/auth/login', ADMIN, browser())).status).toBe(200);

      const second = await stopStack(stack, STOP_TIMEOUT_MS + 5_000);
      expect(second.ms).toBeLessThan(STOP_TIMEOUT_MS);
      expect(second.groupGone).toBe(true);
      for (const port of Object.values(ports)) expect(await isPortFree(port, '127.0.0.1')).toBe(true);
    },
    START_TIMEOUT_MS + 2 * STOP_TIMEOUT_MS + 30_000,
  );
});
