import { createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { buildTestApp, type TestApp, signedIn, uniqueName } from '../../auth/test/helpers';
import { buildApp as buildBackup } from '../../backup-sync/src/app';
import { BackupConfig } from '../../backup-sync/src/config';
import { buildApp } from '../src/app';
import { UploadConfig } from '../src/config';

let auth: TestApp;
let upload: FastifyInstance;
let backup: FastifyInstance;
const aws = createAwsClients(loadConfig(UploadConfig, process.env));

beforeAll(async () => {
  auth = await buildTestApp();
  upload = await buildApp(loadConfig(UploadConfig, { ...process.env, LOG_LEVEL: 'silent' }), { aws });
  backup = await buildBackup(loadConfig(BackupConfig, { ...process.env, LOG_LEVEL: 'silent' }), { aws });
});
afterAll(async () => {
  await Promise.all([auth.app.close(), upload.close(), backup.close()]);
  aws.destroy();
});

describe('upload and backup-sync trust the auth service', () => {
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

  it('backup routes are admin only: 403 for a user, through for an admin', async () => {
    const user = await signedIn(auth.app);
    const asUser = await backup.inject({ method: 'GET', url: '/api/backup/status', headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(asUser.statusCode).toBe(403);
    expect(asUser.json().code).toBe('FORBIDDEN');

    const admin = uniqueName('admin');
    await auth.app.authService.seedAdmin(admin, 'a new admin passphrase 2026');
    const login = await auth.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: admin, password: 'a new admin passphrase 2026' },
    });
    expect(login.json().user.role).toBe('admin');
    const asAdmin = await backup.inject({
      method: 'GET',
      url: '/api/backup/status',
      headers: { authorization: `Bearer ${login.json().accessToken}` },
    });
    expect(asAdmin.statusCode).toBe(501);
  });

  it('answer /health, /ready and /metrics', async () => {
    for (const app of [upload, backup]) {
      expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toContain('process_cpu_user_seconds_total');
    }
  });
});
