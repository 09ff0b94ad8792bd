import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { buildTestApp as buildAuth, signedIn } from '@scs/testing/auth-app';
import { buildApp } from '../src/app';
import { UploadConfig } from '../src/config';
import { multipart } from './helpers';

/**
 * An account deleted from the users table (there is no API for it: an operator removes the item)
 * must not keep its files reachable with an access token issued before (up to 15 minutes): the
 * file API looks the account up, remembering the answer for ACCOUNT_CHECK_CACHE_SECONDS only.
 */
const CACHE_SECONDS = 5;
const config = loadConfig(UploadConfig, { ...process.env, ACCOUNT_CHECK_CACHE_SECONDS: String(CACHE_SECONDS) });
const aws = createAwsClients(config);
let clock = Date.now();
let app: FastifyInstance;
let auth: Awaited<ReturnType<typeof buildAuth>>;

beforeAll(async () => {
  auth = await buildAuth();
  app = await buildApp(config, { aws, now: () => clock, fastify: { logger: { level: 'silent' } } });
});
afterAll(async () => {
  await app.close();
  await auth.app.close();
  aws.destroy();
});

const note = () => {
  const form = multipart([{ name: 'file', filename: 'note.txt', content: Buffer.from('still here?') }]);
  return { payload: form.payload, headers: form.headers };
};

describe('JW-06: a deleted account loses the file API within the account check cache, not when its token expires', () => {
  it('list, upload, read and download answer 401 UNAUTHORIZED once the cache window has passed', async () => {
    const account = await signedIn(auth.app);
    const headers = { authorization: `Bearer ${account.accessToken}` };
    const form = note();
    const stored = await app.inject({ method: 'POST', url: '/api/files', payload: form.payload, headers: { ...headers, ...form.headers } });
    expect(stored.statusCode).toBe(201);
    const id = stored.json().id as string;
    expect((await app.inject({ method: 'GET', url: '/api/files', headers })).statusCode).toBe(200);

    await aws.dynamo.send(new DeleteCommand({ TableName: config.USERS_TABLE, Key: { username: account.username } }));
    // Within the window the remembered answer stands (at most CACHE_SECONDS of grace) ...
    expect((await app.inject({ method: 'GET', url: '/api/files', headers })).statusCode).toBe(200);
    clock += CACHE_SECONDS * 1000;

    // ... after it, every route of the file API refuses the token.
    const again = note();
    const answers = await Promise.all([
      app.inject({ method: 'GET', url: '/api/files', headers }),
      app.inject({ method: 'POST', url: '/api/files', payload: again.payload, headers: { ...headers, ...again.headers } }),
      app.inject({ method: 'GET', url: `/api/files/${id}`, headers }),
      app.inject({ method: 'GET', url: `/api/files/${id}/download`, headers }),
      app.inject({ method: 'POST', url: '/api/files/presign', headers, payload: { name: 'a.txt', size: 3, contentType: 'text/plain' } }),
      app.inject({ method: 'DELETE', url: `/api/files/${id}`, headers }),
    ]);
    for (const res of answers) {
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED', message: 'This account no longer exists' });
    }
  });

  it('an account that exists keeps working, and its lookups are remembered (one read per window)', async () => {
    const account = await signedIn(auth.app);
    const headers = { authorization: `Bearer ${account.accessToken}` };
    let reads = 0;
    aws.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (/^Get(Item)?Command$/.test(context.commandName ?? '') && (args.input as { TableName?: string }).TableName === config.USERS_TABLE) reads += 1;
        return next(args);
      },
      { step: 'initialize', name: 'countAccountReads' },
    );
    try {
      for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'GET', url: '/api/files', headers })).statusCode).toBe(200);
      expect(reads).toBe(1);
      clock += CACHE_SECONDS * 1000;
      expect((await app.inject({ method: 'GET', url: '/api/files', headers })).statusCode).toBe(200);
      expect(reads).toBe(2);
    } finally {
      aws.dynamo.middlewareStack.remove('countAccountReads');
    }
  });

  it('the account check fails closed: when the users table cannot be read, 503 STORAGE_UNAVAILABLE, never the file', async () => {
    const account = await signedIn(auth.app);
    const headers = { authorization: `Bearer ${account.accessToken}` };
    aws.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (/^Get(Item)?Command$/.test(context.commandName ?? '') && (args.input as { TableName?: string }).TableName === config.USERS_TABLE) {
          throw Object.assign(new Error('throttled'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
        }
        return next(args);
      },
      { step: 'initialize', name: 'usersTableDown' },
    );
    try {
      const res = await app.inject({ method: 'GET', url: '/api/files', headers });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    } finally {
      aws.dynamo.middlewareStack.remove('usersTableDown');
    }
    // The failure was not remembered: the next request reads again and passes.
    expect((await app.inject({ method: 'GET', url: '/api/files', headers })).statusCode).toBe(200);
  });
});
