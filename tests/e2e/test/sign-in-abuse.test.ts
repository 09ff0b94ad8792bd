import { Agent } from 'node:http';
import { PasswordHasher } from '@scs/auth/services/passwords';
import { type Answer, send } from '@scs/testing/http-client';
import { type InProcessStack, PASSWORD, startInProcessStack } from '@scs/testing/in-process-stack';

/**
 * Abuse of sign-in through the real gateway, over real sockets, each client from an address of its
 * own (127.0.0.2, 127.0.0.3, ...: loopback, but not in TRUSTED_PROXIES, which is 127.0.0.1 only):
 * a flood of sign-ins of one account, an attacker locking an account, forged forwarded headers sent
 * straight to the auth service.
 */
const FAILURES_PER_ADDRESS = 6;
const json = { 'content-type': 'application/json' };

describe('sign-in abuse through the gateway (real sockets, one address per client)', () => {
  let stack: InProcessStack;
  const agents: Agent[] = [];
  /** A client on its own loopback address: every connection it opens comes from there. */
  const from = (localAddress: string) => {
    const agent = new Agent({ localAddress, keepAlive: true, maxSockets: 64 });
    agents.push(agent);
    return agent;
  };

  beforeAll(async () => {
    stack = await startInProcessStack({
      HASH_CONCURRENCY: '2',
      // Short, so that an unbounded flood overflows it (503), as it did before sign-ins were bounded per account.
      HASH_QUEUE_LIMIT: '8',
      HASH_CONCURRENCY_PER_ACCOUNT: '1',
      HASH_CONCURRENCY_PER_ADDRESS: '4',
      LOGIN_MAX_FAILURES_PER_ADDRESS: String(FAILURES_PER_ADDRESS),
    });
  }, 60_000);

  afterAll(async () => {
    for (const agent of agents) agent.destroy();
    await stack?.close();
  });

  const post = (base: string, path: string, body: unknown, opts: { agent: Agent; headers?: Record<string, string> }): Promise<Answer> =>
    send(`${base}${path}`, { method: 'POST', body: Buffer.from(JSON.stringify(body)), headers: { ...json, ...opts.headers }, agent: opts.agent });
  const newName = () => `abuse${Math.random().toString(36).slice(2, 12)}`;
  const register = async (username: string, agent: Agent, password = PASSWORD) =>
    expect((await post(stack.url, '/auth/register', { username, password }, { agent })).status).toBe(201);
  const deviceCookieOf = (answer: Answer) =>
    ([] as string[]).concat(answer.headers['set-cookie'] ?? []).find((c) => c.startsWith('scs_device='))?.split(';')[0];

  it('AU-05: 40 parallel sign-ins of one account from one address: one hash at a time, the rest 429 TOO_MANY_ATTEMPTS at once, never 503; a bystander signs in meanwhile', async () => {
    const flooder = newName();
    const bystander = newName();
    const bystanderPassword = 'bystander pass phrase 2031';
    const floodAgent = from('127.0.0.2');
    const bystanderAgent = from('127.0.0.3');
    await register(flooder, floodAgent);
    await register(bystander, bystanderAgent, bystanderPassword);

    // The flooder's hashes are held until the flood is at its peak: each of its requests is then
    // either answered or hashing. No timing involved.
    let held = 0;
    let settled = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let peak!: () => void;
    const atPeak = new Promise<void>((resolve) => (peak = resolve));
    const check = () => held + settled >= 40 && peak();
    const verify = PasswordHasher.prototype.verify;
    const spy = jest.spyOn(PasswordHasher.prototype, 'verify').mockImplementation(async function (this: PasswordHasher, stored, password) {
      if (password === PASSWORD) {
        held += 1;
        check();
        await released;
      }
      return verify.call(this, stored, password);
    });
    try {
      const flood = Promise.all(
        Array.from({ length: 40 }, () =>
          post(stack.url, '/auth/login', { username: flooder, password: PASSWORD }, { agent: floodAgent }).then((answer) => {
            settled += 1;
            check();
            return answer;
          }),
        ),
      );
      await atPeak;
      expect(held).toBe(1);
      const other = await post(stack.url, '/auth/login', { username: bystander, password: bystanderPassword }, { agent: bystanderAgent });
      expect(other.status).toBe(200);
      release();
      const answers = await flood;
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 503)).toEqual([]);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      const refused = answers.filter((a) => a.status === 429);
      expect(refused).toHaveLength(39);
      for (const answer of refused) {
        expect(answer.json()).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
        expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      }
    } finally {
      release();
      spy.mockRestore();
    }
  });

  it('AU-05: an attacker locks an account from another address; its owner, with the device cookie of an earlier sign-in, still signs in; without it the owner is throttled', async () => {
    const owner = newName();
    const ownerAgent = from('127.0.0.4');
    const attackerAgent = from('127.0.0.5');
    await register(owner, ownerAgent);
    const first = await post(stack.url, '/auth/login', { username: owner, password: PASSWORD }, { agent: ownerAgent });
    expect(first.status).toBe(200);
    const device = deviceCookieOf(first);
    expect(device).toMatch(/^scs_device=[\w-]{43}$/);
    const attributes = ([] as string[]).concat(first.headers['set-cookie'] ?? []).find((c) => c.startsWith('scs_device=')) ?? '';
    expect(attributes).toMatch(/; HttpOnly/);
    expect(attributes).toMatch(/; SameSite=Strict/);
    expect(attributes).toMatch(/; Path=\/auth/);

    for (let i = 0; i < 5; i += 1) {
      expect((await post(stack.url, '/auth/login', { username: owner, password: `guess number ${i} !!` }, { agent: attackerAgent })).status).toBe(401);
    }
    expect((await post(stack.url, '/auth/login', { username: owner, password: PASSWORD }, { agent: attackerAgent })).status).toBe(429);

    const known = await post(stack.url, '/auth/login', { username: owner, password: PASSWORD }, { agent: ownerAgent, headers: { cookie: device ?? '' } });
    expect(known.status).toBe(200);
    const unknown = await post(stack.url, '/auth/login', { username: owner, password: PASSWORD }, { agent: ownerAgent });
    expect(unknown.status).toBe(429);
    expect(unknown.json()).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
    expect(Number(unknown.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('AU-06: forged X-Forwarded-For sent straight to the auth service from an untrusted address is ignored (that address is throttled); from a trusted proxy the forwarded address counts', async () => {
    const guess = (agent: Agent, forwardedFor: string) =>
      post(stack.services.auth, '/auth/login', { username: newName(), password: 'a wrong guess !!' }, { agent, headers: { 'x-forwarded-for': forwardedFor } });
    const direct = from('127.0.0.6');
    for (let i = 0; i < FAILURES_PER_ADDRESS; i += 1) expect((await guess(direct, `198.51.100.${i}`)).status).toBe(401);
    const refused = await guess(direct, '198.51.100.200');
    expect(refused.status).toBe(429);
    expect(refused.json()).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });

    // 127.0.0.1 is a trusted proxy: what it forwards is the client's address.
    const proxy = from('127.0.0.1');
    for (let i = 0; i < FAILURES_PER_ADDRESS; i += 1) expect((await guess(proxy, '198.51.100.77')).status).toBe(401);
    expect((await guess(proxy, '198.51.100.77')).status).toBe(429);
    expect((await guess(proxy, '198.51.100.78')).status).toBe(401);
  });

  it('AU-06, FU-12: forged X-Forwarded-Host sent straight to the auth service from an untrusted address does not pass the same-site check; from a trusted proxy it does', async () => {
    const refresh = (agent: Agent) =>
      send(`${stack.services.auth}/auth/refresh`, {
        method: 'POST',
        agent,
        headers: { origin: 'https://files.example.com', 'x-forwarded-host': 'files.example.com', cookie: 'scs_refresh=not-a-session' },
      });
    const forged = await refresh(from('127.0.0.7'));
    expect(forged.status).toBe(403);
    expect(forged.json()).toMatchObject({ code: 'CROSS_SITE_REQUEST' });
    // From the trusted proxy the host it forwards is the site's: same-site, so the cookie is checked.
    const proxied = await refresh(from('127.0.0.1'));
    expect(proxied.status).toBe(401);
    expect(proxied.json()).toMatchObject({ code: 'INVALID_REFRESH_TOKEN' });
  });
});
