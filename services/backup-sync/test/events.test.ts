import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { ServerSideCopier } from '@scs/common';
import { FileRepository } from '@scs/common/files';
import type { FastifyInstance } from 'fastify';
import { createHash, randomUUID } from 'node:crypto';
import pino from 'pino';
import { createHandler } from '@scs/sensitive-mover/handler';
import { SensitiveMover } from '@scs/sensitive-mover/mover';
import { type BackupWorld, backupWorld, headOrNothing, testAws, until } from './helpers';

let world: BackupWorld;
let app: FastifyInstance;
beforeAll(async () => {
  world = await backupWorld('events');
  app = await world.backupApp();
  app.backup.consumer.start();
});
afterAll(() => world.close());

const backupOf = (key: string) => headOrNothing(world.aws, world.names.BACKUP_BUCKET, key);
const backedUp = async (key: string) => (await backupOf(key)) !== undefined;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('backups driven by object events (S3 -> EventBridge -> SQS)', () => {
  it('backs up a stored file within seconds: SSE-KMS under the backup key, verified, carrying what rebuilds the record', async () => {
    const user = await world.user();
    const content = Buffer.from('a plain file worth keeping');
    const file = await world.upload(user.headers, { name: 'résumé (final) 100%.txt', content });
    await until(() => backedUp(file.key), 'the backup exists');
    const backup = await backupOf(file.key);
    const source = await headOrNothing(world.aws, world.names.PRIMARY_BUCKET, file.key);
    expect(backup).toMatchObject({
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: world.names.BACKUP_KMS_KEY_ID,
      ContentLength: content.length,
      ContentType: 'text/plain; charset=utf-8',
      ContentDisposition: source?.ContentDisposition,
      ChecksumSHA256: Buffer.from(sha256(content), 'hex').toString('base64'),
      Metadata: expect.objectContaining({ owner: user.userId, 'file-id': file.id, sha256: file.sha256, sensitive: 'false', 'created-at': expect.any(String) }),
    });
    const status = (await app.inject({ method: 'GET', url: '/api/backup/status', headers: await world.admin() })).json();
    expect(status.lastEventAt).toEqual(expect.any(String));
  });

  it("a sensitive file's backup is under the sensitive key (never the backup key), and its move to the vault is not a delete", async () => {
    const user = await world.user();
    const content = Buffer.from('for the vault only');
    const file = await world.upload(user.headers, { name: 'vault.txt', content, sensitive: true });
    const aws = testAws();
    try {
      const mover = new SensitiveMover(
        { ...world.names, MOVER_RECORD_WAIT_MS: 5_000 },
        { s3: aws.s3, copier: new ServerSideCopier(aws.s3, aws.kms), files: new FileRepository(aws.dynamo, world.names.FILES_TABLE, pino({ level: 'silent' })), log: pino({ level: 'silent' }) },
      );
      const moved = await createHandler(mover, pino({ level: 'silent' }))(
        { Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: world.names.PRIMARY_BUCKET }, object: { key: file.key } } }] },
        { awsRequestId: 'move' },
      );
      expect(moved.results[0]?.outcome).toBe('moved');
    } finally {
      aws.destroy();
    }
    // The vault copy's own event leads to a backup made from the vault.
    await until(async () => (await backupOf(file.key))?.Metadata?.['source-bucket'] === world.names.SENSITIVE_BUCKET, 'the vault copy is backed up');
    const backup = await backupOf(file.key);
    expect(backup).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: world.names.SENSITIVE_KMS_KEY_ID, Metadata: expect.objectContaining({ sensitive: 'true' }) });
    // The primary version's removal (an Object Deleted event) did not retire the backup.
    const reconcile = (await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() })).json();
    expect(reconcile.failed).toBe(0);
    expect(await backupOf(`deleted/${file.key}`)).toBeUndefined();
    expect(await backedUp(file.key)).toBe(true);
  });

  it('an event that arrives before the record is retried until the upload service has finished the file', async () => {
    const userId = randomUUID();
    const fileId = randomUUID();
    const key = `users/${userId}/${fileId}`;
    const content = Buffer.from('early event');
    await world.aws.s3.send(
      new PutObjectCommand({ Bucket: world.names.PRIMARY_BUCKET, Key: key, Body: content, ContentType: 'text/plain', ServerSideEncryption: 'AES256', Tagging: 'sensitive=false' }),
    );
    const failuresBefore = await failures();
    await until(async () => (await failures()) > failuresBefore, 'the first attempt found no record');
    expect(await backedUp(key)).toBe(false);
    await world.files.createActive({
      userId,
      fileId,
      name: 'early.txt',
      size: content.length,
      contentType: 'text/plain',
      sha256: sha256(content),
      sensitive: false,
      status: 'active',
      key,
      createdAt: new Date().toISOString(),
    }, 0);
    await until(() => backedUp(key), 'the retry backed it up');
  });

  it("a user's delete retires the backup under deleted/ (kept for the retention period), not deleted at once", async () => {
    const user = await world.user();
    const file = await world.upload(user.headers, { name: 'gone.txt', content: Buffer.from('to be deleted') });
    await until(() => backedUp(file.key), 'the backup exists');
    expect((await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: user.headers })).statusCode).toBe(204);
    // S3 reports the delete marker to EventBridge like this (the emulator does not send it).
    const queueUrl = (await world.aws.sqs.send(new GetQueueUrlCommand({ QueueName: world.names.BACKUP_EVENTS_QUEUE }))).QueueUrl;
    await world.aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({
          version: '0',
          id: randomUUID(),
          'detail-type': 'Object Deleted',
          source: 'aws.s3',
          time: new Date().toISOString(),
          detail: { bucket: { name: world.names.PRIMARY_BUCKET }, object: { key: file.key }, reason: 'DeleteObject', 'deletion-type': 'Delete Marker Created' },
        }),
      }),
    );
    await until(async () => !(await backedUp(file.key)), 'the live backup is retired');
    expect(await backupOf(`deleted/${file.key}`)).toMatchObject({ SSEKMSKeyId: world.names.BACKUP_KMS_KEY_ID, Metadata: expect.objectContaining({ sha256: file.sha256 }) });
  });
});

describe('throttling', () => {
  it('S3 SlowDown (503) is retried with backoff and the copy still happens', async () => {
    const aws = testAws(4);
    let slowDowns = 2;
    // Inside the SDK's retry loop: exactly what a throttled S3 answer looks like to it.
    aws.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CopyObjectCommand' && slowDowns > 0) {
          slowDowns -= 1;
          throw Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 } });
        }
        return next(args);
      },
      { step: 'deserialize', name: 'slowDown' },
    );
    try {
      // Only the throttled instance works on this file.
      await app.backup.consumer.stop();
      const throttled = await world.backupApp({}, { aws });
      const user = await world.user();
      const file = await world.upload(user.headers, { name: 'busy.txt', content: Buffer.from('throttled copy') });
      expect(await throttled.backup.backups.backup({ Bucket: world.names.PRIMARY_BUCKET, Key: file.key })).toBe('copied');
      expect(slowDowns).toBe(0);
      expect(await backedUp(file.key)).toBe(true);
    } finally {
      aws.destroy();
    }
  });
});

async function failures(): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith('scs_backup_failures_total{') && l.includes('stage="event"'));
  return line ? Number(line.split(' ').pop()) : 0;
}
