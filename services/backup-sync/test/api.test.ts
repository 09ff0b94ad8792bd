import type { FastifyInstance } from 'fastify';
import { type BackupWorld, backupWorld } from './helpers';

let world: BackupWorld;
let app: FastifyInstance;
beforeAll(async () => {
  world = await backupWorld('api');
  app = await world.backupApp();
});
afterAll(() => world.close());

describe('the backup API is for admins only', () => {
  it.each([
    ['GET', '/api/backup/status'],
    ['POST', '/api/backup/reconcile'],
    ['POST', '/api/backup/restore'],
  ] as const)('%s %s: 401 anonymous, 403 for a user, through for an admin', async (method, url) => {
    const payload = method === 'POST' && url.endsWith('restore') ? { userId: '00000000-0000-4000-8000-000000000000', fileId: '00000000-0000-7000-8000-000000000000' } : undefined;
    const anonymous = await app.inject({ method, url, payload });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().code).toBe('UNAUTHORIZED');

    const user = await world.user();
    const asUser = await app.inject({ method, url, headers: user.headers, payload });
    expect(asUser.statusCode).toBe(403);
    expect(asUser.json().code).toBe('FORBIDDEN');

    const asAdmin = await app.inject({ method, url, headers: await world.admin(), payload });
    expect(asAdmin.statusCode).toBe(url.endsWith('restore') ? 404 : 200);
  });
});

describe('admin API shapes', () => {
  it('status: counts, backlog, last event and last reconciliation (none yet)', async () => {
    const fresh = await world.backupApp();
    const res = await fresh.inject({ method: 'GET', url: '/api/backup/status', headers: await world.admin() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      primaryObjects: expect.any(Number),
      sensitiveObjects: expect.any(Number),
      backupObjects: expect.any(Number),
      pending: expect.any(Number),
      lastEventAt: null,
      lastReconcile: null,
    });
  });

  it('reconcile: {scanned, copied, alreadyInSync, failed, durationMs}; the status then shows it', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
    expect(res.statusCode).toBe(200);
    expect(Object.keys(res.json()).sort()).toEqual(['alreadyInSync', 'copied', 'durationMs', 'failed', 'scanned']);
    const status = (await app.inject({ method: 'GET', url: '/api/backup/status', headers: await world.admin() })).json();
    expect(status.lastReconcile).toMatchObject({ ...res.json(), durationMs: expect.any(Number), finishedAt: expect.any(String) });
  });

  it('restore: ids are validated (400), an unknown account is 404 ACCOUNT_NOT_FOUND, an unknown file 404 BACKUP_NOT_FOUND', async () => {
    const admin = await world.admin();
    for (const payload of [{}, { userId: '../x', fileId: 'y' }, { userId: '00000000-0000-4000-8000-000000000000' }, 'not json']) {
      const res = await app.inject({ method: 'POST', url: '/api/backup/restore', headers: { ...admin, 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toEqual(expect.any(String));
    }
    const missing = await app.inject({
      method: 'POST',
      url: '/api/backup/restore',
      headers: admin,
      payload: { userId: '00000000-0000-4000-8000-000000000000', fileId: '00000000-0000-7000-8000-000000000000' },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ statusCode: 404, code: 'ACCOUNT_NOT_FOUND' });
    const user = await world.user();
    const unknownFile = await app.inject({
      method: 'POST',
      url: '/api/backup/restore',
      headers: admin,
      payload: { userId: user.userId, fileId: '00000000-0000-7000-8000-000000000000' },
    });
    expect(unknownFile.statusCode).toBe(404);
    expect(unknownFile.json()).toMatchObject({ statusCode: 404, code: 'BACKUP_NOT_FOUND' });
  });

  it('answers /health, /ready and /metrics with the backup metrics', async () => {
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    for (const name of ['scs_backup_events_total', 'scs_backup_copies_total', 'scs_backup_failures_total', 'scs_backup_lag_seconds', 'scs_backup_last_reconcile']) {
      expect(metrics).toContain(name);
    }
  });
});
