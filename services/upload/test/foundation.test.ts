import { createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { buildTestApp, type TestApp, signedIn } from '@scs/testing/auth-app';
import { buildApp } from '../src/app';
import { UploadConfig } from '../src/config';

let auth: TestApp;
let upload: FastifyInstance;
const aws = createAwsClients(loadConfig(UploadConfig, process.env));

beforeAll(async () => {
  auth = await buildTestApp();
  upload = await buildApp(loadConfig(UploadConfig, { ...process.env, LOG_LEVEL: 'silent' }), { aws });
});
afterAll(async () => {
  await Promise.all([auth.app.close(), upload.close()]);
  aws.destroy();
});

describe('upload trusts the auth service', () => {
  it('accept an access token issued by auth (verified with the public keys only)', async () => {
    const s = await signedIn(auth.app);
    const res = await upload.inject({ method: 'GET', url: '/api/files', headers: { authorization: `Bearer ${s.accessToken}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ items: [], nextCursor: null });
  });

  it('FU-11: refuse an anonymous upload before reading its body', async () => {
    const res = await upload.inject({
      method: 'POST',
      url: '/api/files',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      payload: Buffer.alloc(8 * 1024 * 1024, 1),
    });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('answer /health, /ready and /metrics', async () => {
    expect((await upload.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    expect((await upload.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    expect((await upload.inject({ method: 'GET', url: '/metrics' })).body).toContain('process_cpu_user_seconds_total');
  });
});
