import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ResourceNames } from '@scs/local-stack/provision';
import type { LedgerEntry } from '../src/ledger';
import { type PipelineFeatures, StorageCheck } from '../src/storage-check';

/**
 * The resilience suite's ledger check against the tests' emulator (global setup): it must see
 * every kind of loss and leftover, or the suite's "0 lost, 0 phantom" would prove nothing.
 */
describe('resilience ledger check', () => {
  let aws: AwsClients;
  let names: ResourceNames;
  let check: StorageCheck;
  let request = 0;
  const NO_PIPELINE: PipelineFeatures = { mover: false, backup: false };

  beforeAll(() => {
    aws = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 30_000 });
    names = loadConfig(ResourceNames, process.env);
    check = new StorageCheck(aws, names);
  });
  afterAll(() => aws.destroy());

  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  /** A file as the upload service stores it (object in `bucket`, active record) and its 201 in the ledger. */
  async function storedFile(userId: string, opts: { bucket?: string; sensitive?: boolean; record?: boolean; object?: boolean; kmsKey?: string } = {}) {
    const bytes = randomBytes(2048);
    const fileId = randomUUID();
    const key = `users/${userId}/${fileId}`;
    const sensitive = opts.sensitive ?? false;
    if (opts.object !== false) {
      await aws.s3.send(
        new PutObjectCommand({
          Bucket: opts.bucket ?? names.PRIMARY_BUCKET,
          Key: key,
          Body: bytes,
          ...(opts.kmsKey ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: opts.kmsKey } : { ServerSideEncryption: 'AES256' }),
        }),
      );
    }
    if (opts.record !== false) {
      await aws.dynamo.send(
        new PutCommand({ TableName: names.FILES_TABLE, Item: { userId, fileId, status: 'active', size: bytes.length, sha256: sha(bytes), sensitive, key } }),
      );
    }
    const entry: LedgerEntry = {
      request: ++request,
      scenario: 'test',
      userId,
      label: 'file',
      name: 'file.png',
      size: bytes.length,
      sha256: sha(bytes),
      sensitive,
      expect: 201,
      status: 201,
      fileId,
      ms: 1,
      bytesSent: bytes.length,
      attempt: 1,
    };
    return { entry, key, bytes };
  }

  const failed = (userId: string): LedgerEntry => ({
    request: ++request,
    scenario: 'test',
    userId,
    label: 'refused',
    name: 'x.exe',
    size: 10,
    sha256: '',
    sensitive: false,
    expect: 415,
    status: 415,
    ms: 1,
    bytesSent: 10,
    attempt: 1,
  });

  const usage = (bytes: Record<string, number>) => async (userId: string) => bytes[userId] ?? 0;

  it('a stored file with its object, bytes and record, and a refusal that left nothing: clean', async () => {
    const userId = randomUUID();
    const { entry } = await storedFile(userId);
    const outcome = await check.check([entry, failed(userId)], { features: NO_PIPELINE, digests: true, usedBytes: usage({ [userId]: entry.size }) });
    expect(outcome).toEqual({ checked: 1, lost: [], phantom: [] });
  });

  it('lost: a 201 with no object, with other bytes, with no record, with a record that differs, or answered with other figures', async () => {
    const userId = randomUUID();
    const noObject = (await storedFile(userId, { object: false })).entry;
    const otherBytes = await storedFile(userId);
    await aws.s3.send(new PutObjectCommand({ Bucket: names.PRIMARY_BUCKET, Key: otherBytes.key, Body: Buffer.alloc(2048, 1), ServerSideEncryption: 'AES256' }));
    const noRecord = (await storedFile(userId, { record: false })).entry;
    const differs = await storedFile(userId);
    await aws.dynamo.send(
      new PutCommand({ TableName: names.FILES_TABLE, Item: { userId, fileId: differs.entry.fileId, status: 'pending', size: 1, sha256: 'x', sensitive: true } }),
    );
    const misanswered = { ...(await storedFile(userId)).entry, mismatch: 'answered size 1 sha256 abc' };
    const entries = [noObject, otherBytes.entry, noRecord, differs.entry, misanswered];
    const total = entries.reduce((sum, e) => sum + e.size, 0);

    const outcome = await check.check(entries, { features: NO_PIPELINE, digests: true, usedBytes: usage({ [userId]: total }) });
    expect(outcome.phantom).toEqual([]);
    expect(outcome.lost).toHaveLength(5);
    expect(outcome.lost.join('\n')).toContain(`file ${noObject.fileId}): no current object in ${names.PRIMARY_BUCKET}`);
    expect(outcome.lost.join('\n')).toContain(`file ${otherBytes.entry.fileId}): ${names.PRIMARY_BUCKET}: sha256 `);
    expect(outcome.lost.join('\n')).toContain(`file ${noRecord.fileId}): no record in ${names.FILES_TABLE}`);
    expect(outcome.lost.join('\n')).toContain(`file ${differs.entry.fileId}): the record differs: status pending, size 1, sha256 x, sensitive true`);
    expect(outcome.lost.join('\n')).toContain(`file ${misanswered.fileId}): answered size 1 sha256 abc`);
  });

  it('phantom: an object, a record, an open multipart upload, a staged object and quota that no 201 accounts for', async () => {
    const userId = randomUUID();
    const stray = await storedFile(userId);
    const fileId = randomUUID();
    await aws.s3.send(new CreateMultipartUploadCommand({ Bucket: names.PRIMARY_BUCKET, Key: `users/${userId}/${fileId}` }));
    await aws.s3.send(new PutObjectCommand({ Bucket: names.PRIMARY_BUCKET, Key: `incoming/${userId}/${fileId}`, Body: 'x' }));
    await aws.dynamo.send(new PutCommand({ TableName: names.FILES_TABLE, Item: { userId, fileId: '#usage', usedBytes: 0, reservedBytes: 4096, reservedFiles: 2 } }));
    // A direct upload's record while pending lives under its own prefix.
    const pendingId = randomUUID();
    await aws.dynamo.send(new PutCommand({ TableName: names.FILES_TABLE, Item: { userId, fileId: `#pending#${pendingId}`, status: 'pending', size: 1 } }));

    const outcome = await check.check([failed(userId)], { features: NO_PIPELINE, digests: false, usedBytes: usage({ [userId]: 100 }) });
    expect(outcome.lost).toEqual([]);
    const text = outcome.phantom.join('\n');
    expect(text).toContain(`${names.PRIMARY_BUCKET}/${stray.key}: no 201 for file ${stray.entry.fileId}`);
    expect(text).toContain(`${names.FILES_TABLE} ${userId}/${stray.entry.fileId}: a record (active) no 201 accounts for`);
    expect(text).toContain(`${names.PRIMARY_BUCKET}/users/${userId}/${fileId} (upload `);
    expect(text).toContain(`${names.PRIMARY_BUCKET}/incoming/${userId}/${fileId}: a staged object left`);
    expect(text).toContain(`user ${userId}: the quota counts 100 bytes, the files stored hold 0`);
    expect(text).toContain(`user ${userId}: 4096 bytes of quota still reserved`);
    expect(text).toContain(`user ${userId}: 2 files of the file count still reserved`);
    expect(text).toContain(`${names.FILES_TABLE} ${userId}/${pendingId}: a record (pending) no 201 accounts for`);
  });

  it('with the mover: a sensitive file must be in the sensitive bucket under the sensitive key, with nothing left in primary', async () => {
    const userId = randomUUID();
    const stayed = await storedFile(userId, { sensitive: true });
    const moved = await storedFile(userId, { sensitive: true, bucket: names.SENSITIVE_BUCKET, kmsKey: names.SENSITIVE_KMS_KEY_ID });
    const wrongKey = await storedFile(userId, { sensitive: true, bucket: names.SENSITIVE_BUCKET, kmsKey: names.BACKUP_KMS_KEY_ID });
    const entries = [stayed.entry, moved.entry, wrongKey.entry];
    const outcome = await check.check(entries, {
      features: { mover: true, backup: false },
      digests: true,
      usedBytes: usage({ [userId]: entries.reduce((sum, e) => sum + e.size, 0) }),
    });
    expect(outcome.phantom).toEqual([]);
    const text = outcome.lost.join('\n');
    expect(text).toContain(`file ${stayed.entry.fileId}): no current object in ${names.SENSITIVE_BUCKET} (it is in ${names.PRIMARY_BUCKET})`);
    expect(text).toContain(`file ${stayed.entry.fileId}): sensitive, yet 1 version(s) of it remain in ${names.PRIMARY_BUCKET}`);
    expect(text).toContain(`file ${wrongKey.entry.fileId}): ${names.SENSITIVE_BUCKET}: encrypted with aws:kms`);
    expect(text).not.toContain(moved.entry.fileId);
  });

  it('with backups: a file without its backup is lost, a backup of a file no 201 accounts for is phantom', async () => {
    const userId = randomUUID();
    const backedUp = await storedFile(userId);
    await aws.s3.send(
      new PutObjectCommand({ Bucket: names.BACKUP_BUCKET, Key: backedUp.key, Body: backedUp.bytes, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: names.BACKUP_KMS_KEY_ID }),
    );
    const notBackedUp = await storedFile(userId);
    const strayKey = `users/${userId}/${randomUUID()}`;
    await aws.s3.send(new PutObjectCommand({ Bucket: names.BACKUP_BUCKET, Key: strayKey, Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: names.BACKUP_KMS_KEY_ID }));
    const entries = [backedUp.entry, notBackedUp.entry];
    const outcome = await check.check(entries, {
      features: { mover: false, backup: true },
      digests: true,
      usedBytes: usage({ [userId]: entries.reduce((sum, e) => sum + e.size, 0) }),
    });
    expect(outcome.lost).toEqual([expect.stringContaining(`file ${notBackedUp.entry.fileId}): no backup in ${names.BACKUP_BUCKET}`)]);
    expect(outcome.phantom).toEqual([`${names.BACKUP_BUCKET}/${strayKey}: a backup of a file no 201 accounts for`]);
  });
});
