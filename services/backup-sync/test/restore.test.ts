import { GetObjectCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { type BackupWorld, backupWorld, headOrNothing } from './helpers';

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
});
