import { GetObjectAttributesCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { pngBytes } from '@scs/testing/files';
import { type BackupWorld, backupWorld, headOrNothing } from './helpers';

/**
 * Files uploaded in parts with SHA-256 part checksums (resumable uploads) above the size where
 * copies are made in parts: on AWS above 5 GiB; here COPY_IN_PARTS_ABOVE_BYTES is lowered to 5 MiB,
 * so the same path runs on a file of a few parts.
 */
const MiB = 1024 * 1024;
let world: BackupWorld;
let app: FastifyInstance;
beforeAll(async () => {
  world = await backupWorld('large');
  app = await world.backupApp({ COPY_IN_PARTS_ABOVE_BYTES: String(5 * MiB) });
});
afterAll(() => world.close());

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
async function bytesOf(Bucket: string, Key: string): Promise<Buffer> {
  const out = await world.aws.s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}
async function partsOf(Bucket: string, Key: string) {
  const out = await world.aws.s3.send(new GetObjectAttributesCommand({ Bucket, Key, ObjectAttributes: ['ObjectParts'] }));
  return (out.ObjectParts?.Parts ?? []).map((p) => ({ size: p.Size, sha256: p.ChecksumSHA256 }));
}

describe('a file uploaded in parts with SHA-256 part checksums, above COPY_IN_PARTS_ABOVE_BYTES', () => {
  it('FU-15: is backed up, kept under deleted/ when deleted, and restored: each copy made of the same parts, composite SHA-256 verified', async () => {
    const user = await world.user();
    const content = pngBytes(17 * MiB);
    const file = await world.uploadInParts(user.headers, { name: 'scan.png', content, contentType: 'image/png' });
    const primary = await headOrNothing(world.aws, world.names.PRIMARY_BUCKET, file.key);
    expect(primary?.ChecksumSHA256).toMatch(/-3$/);
    const layout = await partsOf(world.names.PRIMARY_BUCKET, file.key);
    expect(layout.map((p) => p.size)).toEqual([file.partSize, file.partSize, content.length - 2 * file.partSize]);

    // Backup: the reconcile copies it into the backup bucket.
    const reconciled = await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
    expect(reconciled.statusCode).toBe(200);
    const backup = await headOrNothing(world.aws, world.names.BACKUP_BUCKET, file.key);
    expect(backup).toMatchObject({ ChecksumSHA256: primary?.ChecksumSHA256, ChecksumType: 'COMPOSITE', ServerSideEncryption: 'aws:kms' });
    expect(await partsOf(world.names.BACKUP_BUCKET, file.key)).toEqual(layout);
    expect(hex(await bytesOf(world.names.BACKUP_BUCKET, file.key))).toBe(file.sha256);

    // Delete: the backup moves under deleted/ (a copy of the backup, verified the same way).
    expect((await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: user.headers })).statusCode).toBe(204);
    await app.backup.backups.deleted(file.key);
    const kept = await headOrNothing(world.aws, world.names.BACKUP_BUCKET, `deleted/${file.key}`);
    expect(kept?.ChecksumSHA256).toBe(primary?.ChecksumSHA256);

    // Restore: back into the primary bucket from the deleted/ copy.
    const restored = await app.inject({ method: 'POST', url: '/api/backup/restore', headers: await world.admin(), payload: { userId: user.userId, fileId: file.id } });
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toMatchObject({ id: file.id, size: content.length, sha256: file.sha256 });
    const back = await headOrNothing(world.aws, world.names.PRIMARY_BUCKET, file.key);
    expect(back).toMatchObject({ ChecksumSHA256: primary?.ChecksumSHA256, ServerSideEncryption: 'AES256' });
    expect(await partsOf(world.names.PRIMARY_BUCKET, file.key)).toEqual(layout);
    expect(hex(await bytesOf(world.names.PRIMARY_BUCKET, file.key))).toBe(file.sha256);
  });
});
