import { DeleteObjectCommand, GetObjectAttributesCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PurgeQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomBytes, randomUUID } from 'node:crypto';
import { ServerSideCopier, type VerifiedCopyRequest } from '@scs/common/s3-copy';
import { FileRepository } from '@scs/common/files';
import { asEnv } from '@scs/testing/isolated';
import { createHandler, handlerFromEnv, type MoveReport } from '../src/handler';
import { FileNotReady, SensitiveMover } from '../src/mover';
import { bodyOf, faultyClients, type MoverWorld, moverWorld, nextEvents, s3Event, sha256, silent, storeFile, type StoredFile, versionsOf } from './helpers';

let world: MoverWorld;
beforeAll(async () => {
  world = await moverWorld('mover');
});
afterAll(() => world.close());
// Tests that build their own events leave the emulator's notifications behind: each test starts afresh.
beforeEach(async () => {
  await world.aws.sqs.send(new PurgeQueueCommand({ QueueUrl: world.queueUrl }));
});

const vaultHead = (key: string) =>
  world.aws.s3.send(new HeadObjectCommand({ Bucket: world.names.SENSITIVE_BUCKET, Key: key, ChecksumMode: 'ENABLED' }));

describe('sensitive mover, driven by the notifications the emulator delivers', () => {
  it('moves a sensitive file: SSE-KMS copy with metadata and tags, no version left in primary, record says sensitive', async () => {
    const file = await storeFile(world, { sensitive: true });
    const [event] = await nextEvents(world.aws.sqs, world.queueUrl, 1);
    const handler = createHandler(world.mover(), silent);

    expect(await handler(event, { awsRequestId: 'r1' })).toEqual({ results: [{ key: file.key, versionId: undefined, outcome: 'moved' }] });

    const head = await vaultHead(file.key);
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.SSEKMSKeyId).toBe(world.names.SENSITIVE_KMS_KEY_ID);
    expect(head.ContentType).toBe('text/plain');
    expect(head.ContentDisposition).toBe(`attachment; filename="notes.txt"; filename*=UTF-8''notes.txt`);
    expect(head.Metadata).toMatchObject({ owner: file.record.userId, 'file-id': file.record.fileId, 'source-version-id': file.versionId });
    expect(head.ChecksumSHA256).toBe(Buffer.from(file.record.sha256, 'hex').toString('base64'));
    const tags = await world.aws.s3.send(new GetObjectTaggingCommand({ Bucket: world.names.SENSITIVE_BUCKET, Key: file.key }));
    expect(tags.TagSet).toEqual(expect.arrayContaining([{ Key: 'sensitive', Value: 'true' }, { Key: 'sha256', Value: file.record.sha256 }]));
    expect(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).toEqual(file.content);

    const primary = await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key);
    expect(primary.versions).toHaveLength(0);
    expect(await world.files.get(file.record.userId, file.record.fileId)).toMatchObject({ location: 'sensitive', movedAt: expect.any(String) });
  });

  it('leaves a file that is not sensitive alone (the tag is read in any case)', async () => {
    const plain = await storeFile(world, { sensitive: false });
    const upper = await storeFile(world, { sensitive: true });
    await world.aws.s3.send(
      new PutObjectCommand({ Bucket: world.names.PRIMARY_BUCKET, Key: upper.key, Body: upper.content, Tagging: 'sensitive=TRUE&sha256=' + upper.record.sha256 }),
    );
    const events = await nextEvents(world.aws.sqs, world.queueUrl, 3);
    const handler = createHandler(world.mover(), silent);
    const outcomes = [];
    for (const e of events) outcomes.push(...(await handler(e, { awsRequestId: 'r' })).results);
    expect(outcomes.find((r) => r.key === plain.key)?.outcome).toBe('not-sensitive');
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, plain.key)).versions).toHaveLength(1);
    // "TRUE" counts: both versions of that key end up moved or superseded, none stays in primary.
    expect(outcomes.filter((r) => r.key === upper.key).map((r) => r.outcome)).toContain('moved');
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, upper.key)).versions).toHaveLength(0);
  });

  it('R14: moving writes nothing the primary bucket notifies, and events of other buckets are ignored', async () => {
    const file = await storeFile(world, { sensitive: true });
    const [event] = await nextEvents(world.aws.sqs, world.queueUrl, 1);
    const handler = createHandler(world.mover(), silent);
    await handler(event, { awsRequestId: 'r' });
    const after = await world.aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: world.queueUrl, WaitTimeSeconds: 2 }));
    expect(after.Messages ?? []).toHaveLength(0);
    const foreign = await handler(s3Event(world.names.SENSITIVE_BUCKET, file.key), { awsRequestId: 'r' });
    expect(foreign.results[0]?.outcome).toBe('ignored');
  });

  it('R15: URL-encoded keys with spaces, "+", unicode and "%" are decoded and moved', async () => {
    const userId = randomUUID();
    const fileId = 'a b+c%d ü € 100%.txt';
    const file = await storeFile(world, { userId, fileId });
    const [event] = await nextEvents(world.aws.sqs, world.queueUrl, 1);
    expect(JSON.stringify(event)).not.toContain(fileId);
    const handler = createHandler(world.mover(), silent);
    expect((await handler(event, { awsRequestId: 'r' })).results).toEqual([{ key: file.key, versionId: undefined, outcome: 'moved' }]);
    expect(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).toEqual(file.content);
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
    // The same key as AWS encodes it ("/" left as it is, a version id present) is the same object.
    const again = await handler(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' });
    expect(again.results[0]).toMatchObject({ key: file.key, outcome: 'already-moved' });
  });
});

describe('idempotent and order-safe', () => {
  it('R9: a duplicate event is a no-op success: one vault object, no error', async () => {
    const file = await storeFile(world, { sensitive: true });
    const [event] = await nextEvents(world.aws.sqs, world.queueUrl, 1);
    const handler = createHandler(world.mover(), silent);
    const first = await handler(event, { awsRequestId: 'r' });
    const duplicates = await Promise.all([handler(event, { awsRequestId: 'd1' }), handler(event, { awsRequestId: 'd2' })]);
    expect(first.results[0]?.outcome).toBe('moved');
    expect(duplicates.map((d) => d.results[0]?.outcome)).toEqual(['already-moved', 'already-moved']);
    expect((await versionsOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).versions).toHaveLength(1);
  });

  it('R10: out-of-order events never put an older version over a newer one', async () => {
    const v1 = await storeFile(world, { sensitive: true, content: Buffer.from('version one'), record: false });
    const v2 = await storeFile(world, { sensitive: true, userId: v1.record.userId, fileId: v1.record.fileId, content: Buffer.from('version two, newer') });
    const handler = createHandler(world.mover(), silent);
    // The record describes the newest version. The newer event first, then the older one (as AWS delivers them: with version ids).
    const newer = await handler(s3Event(world.names.PRIMARY_BUCKET, v2.key, v2.versionId), { awsRequestId: 'r2' });
    const older = await handler(s3Event(world.names.PRIMARY_BUCKET, v1.key, v1.versionId), { awsRequestId: 'r1' });
    expect(newer.results[0]?.outcome).toBe('moved');
    expect(older.results[0]?.outcome).toBe('already-moved');
    expect(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, v1.key)).toEqual(Buffer.from('version two, newer'));
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, v1.key)).versions).toHaveLength(0);
  });

  it('R10: an older version whose event comes while a newer one exists is removed, not copied', async () => {
    const v1 = await storeFile(world, { sensitive: true, content: Buffer.from('old'), record: false });
    const v2 = await storeFile(world, { sensitive: true, userId: v1.record.userId, fileId: v1.record.fileId, content: Buffer.from('new') });
    const handler = createHandler(world.mover(), silent);
    const older = await handler(s3Event(world.names.PRIMARY_BUCKET, v1.key, v1.versionId), { awsRequestId: 'r1' });
    expect(older.results[0]?.outcome).toBe('superseded');
    await expect(vaultHead(v1.key)).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const newer = await handler(s3Event(world.names.PRIMARY_BUCKET, v2.key, v2.versionId), { awsRequestId: 'r2' });
    expect(newer.results[0]?.outcome).toBe('moved');
    expect(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, v1.key)).toEqual(Buffer.from('new'));
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, v1.key)).versions).toHaveLength(0);
  });

  it('R10: a version overwritten while the mover copies it: the newer version moved meanwhile stays in the vault, the older copy is withdrawn', async () => {
    const content = Buffer.from('the same bytes in two versions');
    const v1 = await storeFile(world, { sensitive: true, content });
    const primary = world.names.PRIMARY_BUCKET;
    // The newer version's invocation: it copies first, then waits before its deletes until the older copy landed.
    let reachedDelete!: () => void;
    const atDelete = new Promise<void>((resolve) => (reachedDelete = resolve));
    let letDelete!: () => void;
    const mayDelete = new Promise<void>((resolve) => (letDelete = resolve));
    const newerClients = faultyClients(() => undefined);
    newerClients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteObjectCommand' && (args.input as { Bucket?: string }).Bucket === primary) {
          reachedDelete();
          await mayDelete;
        }
        return next(args);
      },
      { step: 'initialize', name: 'pauseBeforeDelete' },
    );
    // The older version's invocation: while it copies, the key is written again and the newer version is copied.
    let v2: StoredFile | undefined;
    let newer: Promise<MoveReport> | undefined;
    const olderClients = faultyClients(() => undefined);
    olderClients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CopyObjectCommand' && !v2) {
          v2 = await storeFile(world, { sensitive: true, content, userId: v1.record.userId, fileId: v1.record.fileId, record: false });
          newer = createHandler(world.mover({ aws: newerClients }), silent)(s3Event(primary, v2.key, v2.versionId), { awsRequestId: 'newer' });
          await atDelete;
        }
        return next(args);
      },
      { step: 'initialize', name: 'overwriteDuringCopy' },
    );
    try {
      const older = await createHandler(world.mover({ aws: olderClients }), silent)(s3Event(primary, v1.key, v1.versionId), { awsRequestId: 'older' });
      letDelete();
      expect(older.results[0]?.outcome).toBe('superseded');
      expect((await newer)?.results[0]?.outcome).toBe('moved');
      expect((await vaultHead(v1.key)).Metadata?.['source-version-id']).toBe(v2?.versionId);
      expect((await versionsOf(world.aws.s3, primary, v1.key)).versions).toHaveLength(0);
      expect((await world.files.get(v1.record.userId, v1.record.fileId))?.location).toBe('sensitive');
    } finally {
      letDelete();
      newerClients.destroy();
      olderClients.destroy();
    }
  });

  it('R10: a copy that lands after the newer version was moved (and took the older with it) is withdrawn', async () => {
    const content = Buffer.from('copied late');
    const v1 = await storeFile(world, { sensitive: true, content });
    const primary = world.names.PRIMARY_BUCKET;
    const vault = world.names.SENSITIVE_BUCKET;
    let newer: MoveReport | undefined;
    /**
     * S3 reads a copy's source when the copy starts and writes the destination when it ends; the
     * emulator copies at once. This copier stands for a long copy: it copies the pinned version
     * aside, lets the newer version be written and moved meanwhile (which removes the older one
     * from primary), then lands the copy.
     */
    class SlowCopier extends ServerSideCopier {
      override async copy(req: VerifiedCopyRequest) {
        const aside = { Bucket: vault, Key: `${req.destination.Key}.copying` };
        await super.copy({ ...req, destination: aside });
        const v2 = await storeFile(world, { sensitive: true, content, userId: v1.record.userId, fileId: v1.record.fileId, record: false });
        newer = await createHandler(world.mover(), silent)(s3Event(primary, v2.key, v2.versionId), { awsRequestId: 'newer' });
        const landed = await super.copy({ ...req, source: { ...aside, VersionId: undefined }, sourceHead: await world.aws.s3.send(new HeadObjectCommand({ ...aside, ChecksumMode: 'ENABLED' })) });
        for (const v of (await versionsOf(world.aws.s3, vault, aside.Key)).versions) {
          await world.aws.s3.send(new DeleteObjectCommand({ ...aside, VersionId: v.VersionId }));
        }
        return landed;
      }
    }
    const mover = new SensitiveMover(
      { ...world.names, MOVER_RECORD_WAIT_MS: 5_000 },
      { s3: world.aws.s3, copier: new SlowCopier(world.aws.s3, world.aws.kms), files: new FileRepository(world.aws.dynamo, world.names.FILES_TABLE, silent), log: silent },
    );
    const older = await createHandler(mover, silent)(s3Event(primary, v1.key, v1.versionId), { awsRequestId: 'older' });
    expect(newer?.results[0]?.outcome).toBe('moved');
    expect(older.results[0]?.outcome).toBe('superseded');
    const current = await vaultHead(v1.key);
    expect(current.Metadata?.['source-version-id']).not.toBe(v1.versionId);
    expect(current.Metadata?.['source-older-versions']).toContain(v1.versionId);
    expect((await versionsOf(world.aws.s3, primary, v1.key)).versions).toHaveLength(0);
  });

  it('R11: a crash between copy and delete is completed by the retry, without a second copy', async () => {
    const file = await storeFile(world, { sensitive: true });
    let crashes = 1;
    const crashing = faultyClients((command, input) =>
      command === 'DeleteObjectCommand' && input.Bucket === world.names.PRIMARY_BUCKET && crashes-- > 0 ? new Error('process killed') : undefined,
    );
    try {
      const event = s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId);
      const handler = createHandler(world.mover({ aws: crashing }), silent);
      await expect(handler(event, { awsRequestId: 'attempt-1' })).rejects.toThrow('process killed');
      // The copy is there and verified; the source too; the record does not claim the move yet.
      expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(1);
      expect((await versionsOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).versions).toHaveLength(1);
      expect((await world.files.get(file.record.userId, file.record.fileId))?.location).toBeUndefined();

      expect((await handler(event, { awsRequestId: 'attempt-2' })).results[0]?.outcome).toBe('moved');
      expect((await versionsOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).versions).toHaveLength(1);
      expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
      expect((await world.files.get(file.record.userId, file.record.fileId))?.location).toBe('sensitive');
    } finally {
      crashing.destroy();
    }
  });

  it('R11: a stop between delete and record update is completed by the retry', async () => {
    const file = await storeFile(world, { sensitive: true });
    const failing = faultyClients(() => undefined);
    failing.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateItemCommand') throw new Error('process killed');
        return next(args);
      },
      { step: 'initialize', name: 'killBeforeUpdate' },
    );
    try {
      const event = s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId);
      await expect(createHandler(world.mover({ aws: failing }), silent)(event, { awsRequestId: 'a1' })).rejects.toThrow('process killed');
      expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
      expect((await createHandler(world.mover(), silent)(event, { awsRequestId: 'a2' })).results[0]?.outcome).toBe('already-moved');
      expect((await world.files.get(file.record.userId, file.record.fileId))?.location).toBe('sensitive');
    } finally {
      failing.destroy();
    }
  });

  it('R11: the source is never deleted before the copy is verified (a copy with the wrong SHA-256 is removed again)', async () => {
    const file = await storeFile(world, { sensitive: true, record: false });
    // The record says another digest than the bytes have: the copy cannot verify.
    await world.files.createActive({ ...file.record, sha256: sha256('something else') }, 0);
    const handler = createHandler(world.mover(), silent);
    await expect(handler(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' })).rejects.toMatchObject({
      name: 'CopyVerificationError',
    });
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(1);
    expect((await versionsOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).versions).toHaveLength(0);
  });
});

describe('failures keep the source', () => {
  it('R13: the destination refuses (no such bucket): the source stays and the invocation fails', async () => {
    const file = await storeFile(world, { sensitive: true });
    const handler = createHandler(world.mover({ sensitiveBucket: `${world.names.SENSITIVE_BUCKET}-missing` }), silent);
    await expect(handler(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' })).rejects.toMatchObject({
      name: 'NoSuchBucket',
    });
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(1);
    expect((await world.files.get(file.record.userId, file.record.fileId))?.location).toBeUndefined();
  });

  it('R13: KMS refuses the key: the source stays and the invocation fails', async () => {
    const file = await storeFile(world, { sensitive: true });
    const kmsDown = faultyClients((command, input) => {
      if (command !== 'CopyObjectCommand' || input.Bucket !== world.names.SENSITIVE_BUCKET) return undefined;
      return Object.assign(new Error('The ciphertext refers to a customer master key that is disabled'), { name: 'KMS.DisabledException' });
    });
    try {
      const handler = createHandler(world.mover({ aws: kmsDown }), silent);
      await expect(handler(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' })).rejects.toMatchObject({
        name: 'KMS.DisabledException',
      });
      expect(await bodyOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).toEqual(file.content);
      expect((await versionsOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).versions).toHaveLength(0);
    } finally {
      kmsDown.destroy();
    }
  });
});

describe('the window between the object and its record', () => {
  it('an event that arrives before the SHA-256 and the record waits for them, then moves the file', async () => {
    const file = await storeFile(world, { sensitive: true, tag: false, record: false });
    const watched = faultyClients(() => undefined);
    let lookedOnce!: () => void;
    const looked = new Promise<void>((resolve) => (lookedOnce = resolve));
    watched.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'GetItemCommand') lookedOnce();
        return out;
      },
      { step: 'initialize', name: 'watchRecordReads' },
    );
    try {
      const handler = createHandler(world.mover({ aws: watched, waitMs: 15_000 }), silent);
      const moving = handler(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' });
      // The mover has found no record yet; the upload service finishes now.
      await looked;
      await world.files.createActive(file.record, 0);
      expect((await moving).results[0]?.outcome).toBe('moved');
    } finally {
      watched.destroy();
    }
  });

  it('an event whose record never comes fails after the wait (so it is retried), leaving the source', async () => {
    const file = await storeFile(world, { sensitive: true, record: false });
    const handler = createHandler(world.mover({ waitMs: 300 }), silent);
    await expect(handler(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' })).rejects.toBeInstanceOf(FileNotReady);
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(1);
  });

  it("the mover's location and the upload service's fields never clobber each other, whoever writes first", async () => {
    // The mover first (as a mover that did not wait for the record would), then the upload service.
    const early = await storeFile(world, { sensitive: true, record: false });
    await world.aws.dynamo.send(
      new UpdateCommand({
        TableName: world.names.FILES_TABLE,
        Key: { userId: early.record.userId, fileId: early.record.fileId },
        UpdateExpression: 'SET #location = :s, movedAt = :t',
        ExpressionAttributeNames: { '#location': 'location' },
        ExpressionAttributeValues: { ':s': 'sensitive', ':t': new Date().toISOString() },
      }),
    );
    expect(await world.files.get(early.record.userId, early.record.fileId)).toBeUndefined();
    expect(await world.files.createActive(early.record, 0)).toBe(true);
    expect(await world.files.get(early.record.userId, early.record.fileId)).toMatchObject({ ...early.record, location: 'sensitive' });

    // The upload service first, then the mover: only its own fields change.
    const file = await storeFile(world, { sensitive: true });
    await createHandler(world.mover(), silent)(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' });
    expect(await world.files.get(file.record.userId, file.record.fileId)).toEqual({ ...file.record, location: 'sensitive', movedAt: expect.any(String) });
  });

  it('a file deleted before its event is handled leaves no plaintext version behind', async () => {
    const file = await storeFile(world, { sensitive: true });
    // What the upload service's delete does: the record is marked, a delete marker, then the record goes.
    await world.files.beginDelete(file.record, Math.floor(Date.now() / 1000) + 300);
    await world.aws.s3.send(new DeleteObjectCommand({ Bucket: world.names.PRIMARY_BUCKET, Key: file.key }));
    await world.files.finishDelete(file.record);
    const result = await createHandler(world.mover(), silent)(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' });
    expect(result.results[0]?.outcome).toBe('superseded');
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
    expect((await versionsOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).versions).toHaveLength(0);
  });

  it('a file deleted while it moves: the vault copy is removed again', async () => {
    const file = await storeFile(world, { sensitive: true });
    const deleting = faultyClients(() => undefined);
    deleting.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        // The user's delete lands right after the copy.
        if (context.commandName === 'CopyObjectCommand') {
          await world.files.beginDelete(file.record, Math.floor(Date.now() / 1000) + 300);
          await world.files.finishDelete(file.record);
        }
        return out;
      },
      { step: 'initialize', name: 'deleteDuringMove' },
    );
    try {
      const result = await createHandler(world.mover({ aws: deleting }), silent)(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), {
        awsRequestId: 'r',
      });
      expect(result.results[0]?.outcome).toBe('deleted');
      expect((await versionsOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).versions).toHaveLength(0);
      expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
    } finally {
      deleting.destroy();
    }
  });
});

describe('large objects', () => {
  it('copies in parts (UploadPartCopy) above the single-copy limit, verified with the source full-object checksum', async () => {
    const content = randomBytes(12 * 1024 * 1024);
    const file = await storeFile(world, { sensitive: true, content });
    const mover = world.mover({ copier: { multipartAboveBytes: 5 * 1024 * 1024, partBytes: 5 * 1024 * 1024 } });
    expect((await createHandler(mover, silent)(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' })).results[0]?.outcome).toBe(
      'moved',
    );
    const head = await vaultHead(file.key);
    expect(head.ETag).toMatch(/-3"$/);
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(sha256(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key))).toBe(file.record.sha256);
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
  });

  it('FU-15: a file uploaded in parts with SHA-256 part checksums, above COPY_IN_PARTS_ABOVE_BYTES: the same parts, each and the composite SHA-256 verified', async () => {
    const parts = [randomBytes(8 * 1024 * 1024), randomBytes(8 * 1024 * 1024), randomBytes(3000)];
    const file = await storeFile(world, { sensitive: true, parts });
    const source = await world.aws.s3.send(new HeadObjectCommand({ Bucket: world.names.PRIMARY_BUCKET, Key: file.key, ChecksumMode: 'ENABLED' }));
    expect(source.ChecksumSHA256).toMatch(/-3$/);
    const layout = async (Bucket: string) =>
      (await world.aws.s3.send(new GetObjectAttributesCommand({ Bucket, Key: file.key, ObjectAttributes: ['ObjectParts'] }))).ObjectParts?.Parts;
    const sourceParts = await layout(world.names.PRIMARY_BUCKET);

    const built = handlerFromEnv({ ...process.env, ...asEnv(world.names), LOG_LEVEL: 'silent', COPY_IN_PARTS_ABOVE_BYTES: String(5 * 1024 * 1024) });
    try {
      const report = await built.handler(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId), { awsRequestId: 'r' });
      expect(report.results[0]?.outcome).toBe('moved');
    } finally {
      built.destroy();
    }
    const head = await vaultHead(file.key);
    expect(head).toMatchObject({ ChecksumSHA256: source.ChecksumSHA256, ChecksumType: 'COMPOSITE', ServerSideEncryption: 'aws:kms' });
    expect(await layout(world.names.SENSITIVE_BUCKET)).toEqual(sourceParts);
    expect(sha256(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key))).toBe(file.record.sha256);
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
    expect((await world.files.get(file.record.userId, file.record.fileId))?.location).toBe('sensitive');
  });
});
