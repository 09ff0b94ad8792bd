import { GetObjectCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { type BackupWorld, backupWorld, headOrNothing, signedIn } from './helpers';

let world: BackupWorld;
let app: FastifyInstance;
beforeAll(async () => {
  world = await backupWorld('restore');
  app = await world.backupApp();
});
afterAll(() => world.close());

async function restore(userId: string, fileId: string) {
  return app.inject({ method: 'POST', url: '/api/backup/restore', headers: await world.admin(), payload: { userId, fileId } });
}
async function usage(headers: Record<string, string>): Promise<number> {
  return (await world.uploadApp.inject({ method: 'GET', url: '/api/files/usage', headers })).json<{ usedBytes: number }>().usedBytes;
}
async function download(headers: Record<string, string>, id: string): Promise<Buffer> {
  const link = await world.uploadApp.inject({ method: 'GET', url: `/api/files/${id}/download?redirect=false`, headers });
  expect(link.statusCode).toBe(200);
  return Buffer.from(await (await fetch(link.json<{ url: string }>().url)).arrayBuffer());
}

describe('restore', () => {
  it('brings back a deleted file: object in primary (SSE-S3), record with the original owner, name, type, checksum, date; counted in the quota', async () => {
    const user = await world.user();
    const content = Buffer.from('restore me, please');
    const file = await world.upload(user.headers, { name: 'Grüße & notes (v2).txt', content });
    const original = (await world.uploadApp.inject({ method: 'GET', url: `/api/files/${file.id}`, headers: user.headers })).json();
    await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
    expect((await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: user.headers })).statusCode).toBe(204);
    const before = await usage(user.headers);

    const res = await restore(user.userId, file.id);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      id: file.id,
      userId: user.userId,
      name: 'Grüße & notes (v2).txt',
      size: content.length,
      contentType: original.contentType,
      sha256: file.sha256,
      sensitive: false,
      location: 'primary',
      createdAt: original.createdAt,
    });
    const listed = (await world.uploadApp.inject({ method: 'GET', url: `/api/files/${file.id}`, headers: user.headers })).json();
    expect(listed).toEqual({ ...original });
    expect(await download(user.headers, file.id)).toEqual(content);
    expect((await headOrNothing(world.aws, world.names.PRIMARY_BUCKET, file.key))?.ServerSideEncryption).toBe('AES256');
    expect(await usage(user.headers)).toBe(before + content.length);
  });

  it('brings back a sensitive file encrypted into the vault under the sensitive key, never as plaintext into primary', async () => {
    const user = await world.user();
    const content = Buffer.from('vault contents');
    const file = await world.upload(user.headers, { name: 'secret.txt', content, sensitive: true });
    await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
    expect((await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: user.headers })).statusCode).toBe(204);
    const primaryBefore = await world.aws.s3.send(new ListObjectVersionsCommand({ Bucket: world.names.PRIMARY_BUCKET, Prefix: file.key }));

    const res = await restore(user.userId, file.id);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ sensitive: true, location: 'sensitive', sha256: file.sha256 });
    const vault = await headOrNothing(world.aws, world.names.SENSITIVE_BUCKET, file.key);
    expect(vault).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: world.names.SENSITIVE_KMS_KEY_ID });
    // Nothing new appeared in the primary bucket.
    const primaryAfter = await world.aws.s3.send(new ListObjectVersionsCommand({ Bucket: world.names.PRIMARY_BUCKET, Prefix: file.key }));
    expect(primaryAfter.Versions ?? []).toEqual(primaryBefore.Versions ?? []);
    expect(await download(user.headers, file.id)).toEqual(content);
    const body = await world.aws.s3.send(new GetObjectCommand({ Bucket: world.names.SENSITIVE_BUCKET, Key: file.key }));
    expect(body.ServerSideEncryption).toBe('aws:kms');
    await body.Body?.transformToByteArray();
  });

  it('two restores at once: one file, one record, counted once', async () => {
    const user = await world.user();
    const content = Buffer.from('only once');
    const file = await world.upload(user.headers, { name: 'once.txt', content });
    await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
    await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: user.headers });
    const before = await usage(user.headers);
    const results = await Promise.all([restore(user.userId, file.id), restore(user.userId, file.id)]);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
    expect(await usage(user.headers)).toBe(before + content.length);
    const list = (await world.uploadApp.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json<{ items: { id: string }[] }>();
    expect(list.items.filter((i) => i.id === file.id)).toHaveLength(1);
  });

  it('restoring a file that is there already changes nothing', async () => {
    const user = await world.user();
    const file = await world.upload(user.headers, { name: 'still-here.txt', content: Buffer.from('present') });
    await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
    const before = await usage(user.headers);
    const res = await restore(user.userId, file.id);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: file.id, userId: user.userId });
    expect(await usage(user.headers)).toBe(before);
  });

  it("another owner's id finds nothing (404): the owner never changes", async () => {
    const user = await world.user();
    const other = await world.user();
    const file = await world.upload(user.headers, { name: 'mine.txt', content: Buffer.from('mine') });
    await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
    const res = await restore(other.userId, file.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('BACKUP_NOT_FOUND');
  });

  it("a restore for an account that no longer exists is 404 ACCOUNT_NOT_FOUND and recreates nothing", async () => {
    const account = await signedIn(world.auth.app);
    const headers = { authorization: `Bearer ${account.accessToken}` };
    const file = await world.upload(headers, { name: 'gone-with-its-owner.txt', content: Buffer.from('orphaned') });
    await app.backup.backups.backup({ Bucket: world.names.PRIMARY_BUCKET, Key: file.key });
    expect((await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers })).statusCode).toBe(204);
    const before = await world.usage.usage(account.userId);
    // The account is removed (an operator's delete of the users item).
    await world.aws.dynamo.send(new DeleteCommand({ TableName: world.names.USERS_TABLE, Key: { username: account.username } }));

    const res = await restore(account.userId, file.id);
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    expect(await world.files.get(account.userId, file.id)).toBeUndefined();
    expect(await world.usage.usage(account.userId)).toEqual(before);
    expect(await headOrNothing(world.aws, world.names.PRIMARY_BUCKET, file.key)).toBeUndefined();
  });

  it("a restore racing the owner's delete, 24 times over real connections: the file ends restored whole or deleted whole", async () => {
    const user = await world.user();
    const base = async (a: FastifyInstance) => {
      if (!a.server.listening) await a.listen({ port: 0, host: '127.0.0.1' });
      return `http://127.0.0.1:${(a.server.address() as AddressInfo).port}`;
    };
    const [uploadBase, backupBase] = [await base(world.uploadApp), await base(app)];
    const adminHeaders = { ...(await world.admin()), 'content-type': 'application/json' };
    const outcomes = { restored: 0, deleted: 0 };
    for (let i = 0; i < 24; i += 1) {
      const sensitive = i % 4 === 3;
      const file = await world.upload(user.headers, { name: `race-${i}.txt`, content: Buffer.alloc(100 + i, 'r'), sensitive });
      await app.backup.backups.backup({ Bucket: world.names.PRIMARY_BUCKET, Key: file.key });
      const [deleted, restored] = await Promise.all([
        fetch(`${uploadBase}/api/files/${file.id}`, { method: 'DELETE', headers: user.headers }),
        (async () => {
          // The restore starts a few event-loop turns after the delete: a different interleaving each time.
          for (let turn = 0; turn < i % 6; turn += 1) await nextTurn();
          return fetch(`${backupBase}/api/backup/restore`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ userId: user.userId, fileId: file.id }) });
        })(),
      ]);
      expect(deleted.status).toBe(204);
      expect([200, 409]).toContain(restored.status);
      if (restored.status === 409) expect(await restored.json()).toMatchObject({ code: 'DELETE_IN_PROGRESS' });
      else await restored.arrayBuffer();

      const record = await world.files.get(user.userId, file.id);
      const objects = await Promise.all(
        [world.names.PRIMARY_BUCKET, world.names.SENSITIVE_BUCKET].map((bucket) => headOrNothing(world.aws, bucket, file.key)),
      );
      const present = objects.filter((o) => o !== undefined);
      if (record) {
        // Restored whole: an active record, and its object with the recorded bytes.
        expect(record.status).toBe('active');
        expect(present.map((o) => o?.ChecksumSHA256)).toContain(Buffer.from(file.sha256, 'hex').toString('base64'));
        outcomes.restored += 1;
      } else {
        // Deleted whole: no record and no object in either bucket.
        expect(present).toEqual([]);
        outcomes.deleted += 1;
      }
    }
    // Usage counts exactly the files that are there.
    const listed = (await world.uploadApp.inject({ method: 'GET', url: '/api/files?limit=100', headers: user.headers })).json<{ items: { size: number }[] }>();
    expect(listed.items).toHaveLength(outcomes.restored);
    expect(await usage(user.headers)).toBe(listed.items.reduce((n, f) => n + f.size, 0));
  });
});
