import { createHash, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { Readable } from 'node:stream';
import { multipart, type Part } from '@scs/testing/files';
import { type Answer, send, type SendOptions } from '@scs/testing/http-client';
import { type Account, type InProcessStack, signUp, startInProcessStack } from '@scs/testing/in-process-stack';

/**
 * Early refusals through the real gateway, over real sockets: a request answered before its body
 * was read (401 before the body, 413, 415, 429, a bad multipart part, an oversized JSON body)
 * reaches the client as that answer (never a reset, EPIPE or 502), and the connection it used,
 * client <-> gateway and gateway <-> service, is left drained or closed, so the next request that
 * reuses it, often another user's, is answered at once.
 */
const MiB = 1024 * 1024;
const MAX_UPLOAD_BYTES = 8 * MiB;
const QUOTA_BYTES = 12 * MiB;
const UPLOADS_PER_MINUTE = 3;
/** A stalled connection waits for the keep-alive timeout (65 s); anything near this deadline is a hang. */
const DEADLINE_MS = 20_000;

const text = (bytes: number) => Buffer.from('The quick brown fox jumps over the lazy dog. 0123456789\n'.repeat(Math.ceil(bytes / 56)).slice(0, bytes));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const form = (parts: Part[]) => {
  const { payload, headers } = multipart(parts);
  return { body: payload, headers };
};
const fileForm = (filename: string, content: Buffer) => form([{ name: 'file', filename, content }]);

describe('early refusals through the gateway (real sockets)', () => {
  let stack: InProcessStack;
  let alice: Account;
  let bob: Account;

  beforeAll(async () => {
    stack = await startInProcessStack({
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
      QUOTA_BYTES: String(QUOTA_BYTES),
      UPLOADS_PER_MINUTE: String(UPLOADS_PER_MINUTE),
    });
    [alice, bob] = await Promise.all([signUp(stack), signUp(stack)]);
  }, 60_000);

  afterAll(async () => stack?.close());

  const usage = async (who: Account, agent: Agent | false = false): Promise<Answer> => {
    const res = await send(`${stack.url}/api/files/usage`, { headers: who.headers, agent, deadlineMs: DEADLINE_MS });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ quotaBytes: QUOTA_BYTES, maxUploadBytes: MAX_UPLOAD_BYTES });
    return res;
  };

  it("issue reproduction: user A's refused 3 MiB holiday.mp4 (and a 3 MiB scan.pdf of zeros) never stall user B's GET /api/files/usage", async () => {
    for (const [name, content] of [
      ['holiday.mp4', randomBytes(3 * MiB)],
      ['scan.pdf', Buffer.alloc(3 * MiB)],
    ] as const) {
      const userA = await signUp(stack);
      for (let round = 0; round < UPLOADS_PER_MINUTE; round++) {
        const upload = fileForm(name, content);
        const refused = await fetch(`${stack.url}/api/files`, {
          method: 'POST',
          headers: { ...userA.headers, ...upload.headers },
          body: upload.body,
          signal: AbortSignal.timeout(DEADLINE_MS),
        });
        expect(refused.status).toBe(415);
        expect(await refused.json()).toMatchObject({ statusCode: 415, code: 'UNSUPPORTED_FILE_TYPE' });

        const next = await fetch(`${stack.url}/api/files/usage`, { headers: bob.headers, signal: AbortSignal.timeout(DEADLINE_MS) });
        expect(next.status).toBe(200);
        expect(await next.json()).toMatchObject({ usedBytes: 0, quotaBytes: QUOTA_BYTES });
      }
    }
  });

  /** Each early refusal: what is sent, and the answer it must get. */
  interface Refusal {
    name: string;
    path?: string;
    who?: 'signed-in' | 'nobody' | 'forged';
    request: () => { body: Buffer; headers: Record<string, string> };
    /** Sent without Content-Length (chunked), so only the bytes tell the size. */
    chunked?: boolean;
    before?: (account: Account) => Promise<void>;
    status: number;
    code: string;
  }

  const refusals: Refusal[] = [
    { name: 'FU-11: an anonymous 4 MiB upload is 401 before its body is read', who: 'nobody', request: () => fileForm('notes.txt', text(4 * MiB)), status: 401, code: 'UNAUTHORIZED' },
    { name: 'FU-11: a 4 MiB upload with a forged token is 401', who: 'forged', request: () => fileForm('notes.txt', text(4 * MiB)), status: 401, code: 'UNAUTHORIZED' },
    { name: 'FU-11: an anonymous 200 KiB upload is 401 and its connection stays usable', who: 'nobody', request: () => fileForm('notes.txt', text(200 * 1024)), status: 401, code: 'UNAUTHORIZED' },
    { name: 'FU-05: a 3 MiB holiday.mp4 is 415 from its first bytes', request: () => fileForm('holiday.mp4', randomBytes(3 * MiB)), status: 415, code: 'UNSUPPORTED_FILE_TYPE' },
    { name: 'FU-05: a 3 MiB scan.pdf of zero bytes is 415', request: () => fileForm('scan.pdf', Buffer.alloc(3 * MiB)), status: 415, code: 'UNSUPPORTED_FILE_TYPE' },
    { name: 'FU-01: a body declared 5 MiB over the limit is 413 before it is read', request: () => fileForm('big.txt', text(MAX_UPLOAD_BYTES + 5 * MiB)), status: 413, code: 'FILE_TOO_LARGE' },
    { name: 'FU-01: a chunked body is 413 as soon as it crosses the limit', chunked: true, request: () => fileForm('big.txt', text(MAX_UPLOAD_BYTES + 5 * MiB)), status: 413, code: 'FILE_TOO_LARGE' },
    {
      name: 'FU-03: an upload over the quota is 413 before its body is read',
      before: async (account) => {
        const half = fileForm('half.txt', text(QUOTA_BYTES / 2));
        expect((await send(`${stack.url}/api/files`, { body: half.body, headers: { ...account.headers, ...half.headers } })).status).toBe(201);
      },
      request: () => fileForm('big.txt', text(QUOTA_BYTES / 2 + MiB)),
      status: 413,
      code: 'QUOTA_EXCEEDED',
    },
    {
      name: 'an upload over the per-user rate limit is 429 before its body is read',
      before: async (account) => {
        for (let i = 0; i < UPLOADS_PER_MINUTE; i++) {
          const small = fileForm('tiny.mp4', randomBytes(1024));
          expect((await send(`${stack.url}/api/files`, { body: small.body, headers: { ...account.headers, ...small.headers } })).status).toBe(415);
        }
      },
      request: () => fileForm('notes.txt', text(2 * MiB)),
      status: 429,
      code: 'RATE_LIMITED',
    },
    {
      name: 'FU-02: a form whose first part is an unexpected field is 400 BAD_MULTIPART with 3 MiB unread',
      request: () => form([{ name: 'other', value: 'x' }, { name: 'file', filename: 'notes.txt', content: text(3 * MiB) }]),
      status: 400,
      code: 'BAD_MULTIPART',
    },
    {
      name: 'FU-13: a __proto__ field is 400 BAD_MULTIPART with 3 MiB unread',
      request: () => form([{ name: '__proto__', value: 'x' }, { name: 'file', filename: 'notes.txt', content: text(3 * MiB) }]),
      status: 400,
      code: 'BAD_MULTIPART',
    },
    {
      name: 'a 2 MB JSON body to /auth/login is 413 BODY_TOO_LARGE',
      path: '/auth/login',
      who: 'nobody',
      request: () => ({ body: Buffer.from(JSON.stringify({ username: 'someone', password: 'p'.repeat(2_000_000) })), headers: { 'content-type': 'application/json' } }),
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
  ];

  const prepare = async (refusal: Refusal) => {
    const account = await signUp(stack);
    await refusal.before?.(account);
    const { body, headers } = refusal.request();
    const auth =
      refusal.who === 'nobody' ? {} : refusal.who === 'forged' ? { authorization: `Bearer ${alice.accessToken.slice(0, -6)}AAAAAA` } : account.headers;
    const options: SendOptions = {
      body,
      headers: { ...auth, ...headers, ...(refusal.chunked ? { 'transfer-encoding': 'chunked' } : {}) },
      deadlineMs: DEADLINE_MS,
    };
    return { account, url: `${stack.url}${refusal.path ?? '/api/files'}`, options, body, headers: options.headers as Record<string, string> };
  };

  describe.each(refusals)('$name', (refusal) => {
    it('a browser-like client (keeps sending the body) gets the answer, and its pooled connection then serves the next request', async () => {
      const { account, url, options } = await prepare(refusal);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const res = await send(url, { ...options, agent, afterAnswer: 'finish' });
        expect(res.status).toBe(refusal.status);
        expect(res.json()).toEqual({ statusCode: refusal.status, code: refusal.code, error: expect.any(String), message: expect.any(String) });
        // Reused when the rest was drained; a fresh connection when it was closed (and said so).
        const next = await usage(account, agent);
        expect(next.reusedSocket).toBe(res.headers.connection !== 'close');
      } finally {
        agent.destroy();
      }
    });

    it("Node's fetch (stops sending at the answer) gets the answer, not a network error", async () => {
      const { account, url, headers, body } = await prepare(refusal);
      // fetch chooses chunked encoding itself for a stream body.
      const { 'transfer-encoding': _chunked, ...fetchHeaders } = headers;
      const res = await fetch(url, {
        method: 'POST',
        headers: fetchHeaders,
        body: refusal.chunked ? (Readable.toWeb(Readable.from([body])) as ReadableStream<Uint8Array>) : body,
        signal: AbortSignal.timeout(DEADLINE_MS),
        ...(refusal.chunked ? { duplex: 'half' } : {}),
      } as RequestInit);
      expect(res.status).toBe(refusal.status);
      expect(await res.json()).toMatchObject({ statusCode: refusal.status, code: refusal.code });
      await usage(account);
    });
  });

  it('an answer that drained a small unread body keeps the connection: client -> gateway reuse after a 401', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const small = fileForm('notes.txt', text(100 * 1024));
      for (let i = 0; i < 3; i++) {
        const refused = await send(`${stack.url}/api/files`, { body: small.body, headers: small.headers, agent, deadlineMs: DEADLINE_MS });
        expect(refused.status).toBe(401);
        expect(refused.headers.connection).not.toBe('close');
        expect((await usage(alice, agent)).reusedSocket).toBe(true);
      }
    } finally {
      agent.destroy();
    }
  });

  it('A3: Expect: 100-continue (curl -F of a 2.2 MB notes.txt) gets 100 Continue and the file is stored', async () => {
    const account = await signUp(stack);
    const content = text(2_200_000);
    const upload = fileForm('notes.txt', content);
    const res = await send(`${stack.url}/api/files`, {
      body: upload.body,
      headers: { ...account.headers, ...upload.headers, expect: '100-continue' },
      deadlineMs: DEADLINE_MS,
    });
    expect(res.continued).toBe(true);
    expect(res.status).toBe(201);
    expect(res.json()).toMatchObject({ name: 'notes.txt', size: content.length, sha256: sha256(content), contentType: expect.stringMatching(/^text\/plain/) });
    expect((await usage(account)).json()).toMatchObject({ usedBytes: content.length });
  });

  it('A3: Expect: 100-continue without a token is 401 through the gateway', async () => {
    const upload = fileForm('notes.txt', text(2_200_000));
    const res = await send(`${stack.url}/api/files`, { body: upload.body, headers: { ...upload.headers, expect: '100-continue' }, deadlineMs: DEADLINE_MS });
    expect(res.status).toBe(401);
    expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('many users at once: refusals, uploads and reads in parallel are all answered correctly, none waits on another', async () => {
    const users = await Promise.all(Array.from({ length: 6 }, () => signUp(stack)));
    const content = text(MiB);
    for (let round = 0; round < 2; round++) {
      const work = users.map(async (user, i) => {
        if (i % 2 === 0) {
          const refused = fileForm(i % 4 === 0 ? 'holiday.mp4' : 'scan.pdf', i % 4 === 0 ? randomBytes(3 * MiB) : Buffer.alloc(3 * MiB));
          const res = await send(`${stack.url}/api/files`, { body: refused.body, headers: { ...user.headers, ...refused.headers }, deadlineMs: DEADLINE_MS });
          expect(res.status).toBe(415);
          expect((await usage(user)).json()).toMatchObject({ usedBytes: 0 });
        } else {
          const good = fileForm(`notes-${round}.txt`, content);
          const res = await send(`${stack.url}/api/files`, { body: good.body, headers: { ...user.headers, ...good.headers }, deadlineMs: DEADLINE_MS });
          expect(res.status).toBe(201);
          expect(res.json()).toMatchObject({ size: content.length, sha256: sha256(content) });
          expect((await usage(user)).json()).toMatchObject({ usedBytes: (round + 1) * content.length });
        }
      });
      await Promise.all(work);
    }
  });

  it('on the service itself: a refused upload straight to the upload service leaves its keep-alive connection usable', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const [name, content] of [
        ['holiday.mp4', randomBytes(3 * MiB)],
        ['tiny.mp4', randomBytes(64 * 1024)],
      ] as const) {
        const upload = fileForm(name, content);
        const res = await send(`${stack.services.upload}/api/files`, { body: upload.body, headers: { ...bob.headers, ...upload.headers }, agent, deadlineMs: DEADLINE_MS });
        expect(res.status).toBe(415);
        const next = await send(`${stack.services.upload}/api/files/usage`, { headers: bob.headers, agent, deadlineMs: DEADLINE_MS });
        expect(next.status).toBe(200);
        expect(next.reusedSocket).toBe(res.headers.connection !== 'close');
      }
    } finally {
      agent.destroy();
    }
  });

  it('the gateway never failed to reach a service or relay an answer', () => {
    expect(stack.problems.filter((line) => line.msg === 'proxying failed')).toEqual([]);
  });
});
