import { DeleteObjectCommand, ListObjectVersionsCommand, PutObjectLockConfigurationCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { type BackupWorld, backupWorld, headOrNothing } from './helpers';

// IN-15: on AWS the backup bucket is under Object Lock (governance mode, BACKUP_RETENTION_DAYS;
// terraform/storage.tf) and no role holds the bypass. Here the test's backup bucket gets the same
// lock: a delete of a locked version is refused, a user's delete still retires the backup, and the
// file can still be restored.

let world: BackupWorld;
let app: FastifyInstance;
beforeAll(async () => {
  world = await backupWorld('object-lock');
  await world.aws.s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: world.names.BACKUP_BUCKET,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } } },
    }),
  );
  app = await world.backupApp();
});
afterAll(() => world.close());

async function versionsOf(key: string) {
  const out = await world.aws.s3.send(new ListObjectVersionsCommand({ Bucket: world.names.BACKUP_BUCKET, Prefix: key }));
  return { versions: (out.Versions ?? []).filter((v) => v.Key === key), markers: (out.DeleteMarkers ?? []).filter((m) => m.Key === key) };
}

describe('backups under Object Lock', () => {
  it('IN-15: a locked backup version cannot be deleted (no bypass): S3 answers AccessDenied and the version stays', async () => {
    const user = await world.user();
    const file = await world.upload(user.headers, { name: 'kept.txt', content: Buffer.from('a locked backup') });
    expect(await app.backup.backups.backup({ Bucket: world.names.PRIMARY_BUCKET, Key: file.key }, 5_000)).toBe('copied');
    const [version] = (await versionsOf(file.key)).versions;
    expect(version?.VersionId).toBeDefined();
    await expect(world.aws.s3.send(new DeleteObjectCommand({ Bucket: world.names.BACKUP_BUCKET, Key: file.key, VersionId: version!.VersionId }))).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    expect((await versionsOf(file.key)).versions.map((v) => v.VersionId)).toContain(version!.VersionId);
  });

  it("IN-15: a user's delete still retires the backup (its locked versions stay behind a delete marker) and the file can be restored", async () => {
    const user = await world.user();
    const content = Buffer.from('deleted, then restored');
    const file = await world.upload(user.headers, { name: 'back.txt', content });
    expect(await app.backup.backups.backup({ Bucket: world.names.PRIMARY_BUCKET, Key: file.key }, 5_000)).toBe('copied');
    expect((await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: user.headers })).statusCode).toBe(204);

    expect(await app.backup.backups.deleted(file.key)).toBe('retired');
    expect(await headOrNothing(world.aws, world.names.BACKUP_BUCKET, file.key)).toBeUndefined();
    const left = await versionsOf(file.key);
    expect(left.versions.length).toBeGreaterThanOrEqual(1);
    expect(left.markers.length).toBe(1);
    expect((await headOrNothing(world.aws, world.names.BACKUP_BUCKET, `deleted/${file.key}`))?.Metadata).toMatchObject({ sha256: file.sha256 });

    const res = await app.inject({ method: 'POST', url: '/api/backup/restore', headers: await world.admin(), payload: { userId: user.userId, fileId: file.id } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: file.id, sha256: file.sha256, location: 'primary' });
    const link = await world.uploadApp.inject({ method: 'GET', url: `/api/files/${file.id}/download?redirect=false`, headers: user.headers });
    expect(Buffer.from(await (await fetch(link.json<{ url: string }>().url)).arrayBuffer())).toEqual(content);
  });
});
