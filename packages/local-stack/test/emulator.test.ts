import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectAttributesCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { createAwsClients, loadConfig } from '@scs/common';
import { paginateObjectVersions } from '@scs/common/s3-versions';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ResourceNames } from '../src/provision';

const aws = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 1, AWS_REQUEST_TIMEOUT_MS: 10_000 });
const Bucket = `scs-emulator-test-${randomBytes(4).toString('hex')}`;
beforeAll(async () => {
  await aws.s3.send(new CreateBucketCommand({ Bucket }));
});
afterAll(() => aws.destroy());

const b64 = (bytes: Buffer) => bytes.toString('base64');
const wrongCrc32 = b64(Buffer.from([1, 2, 3, 4]));

describe('the emulator verifies body checksums as S3 does', () => {
  it('refuses a PUT whose CRC32 or SHA-256 does not match its body with 400 BadDigest, and stores nothing', async () => {
    const Body = randomBytes(1000);
    for (const checksum of [{ ChecksumCRC32: wrongCrc32 }, { ChecksumSHA256: b64(createHash('sha256').update('other').digest()) }]) {
      const err = await aws.s3.send(new PutObjectCommand({ Bucket, Key: 'bad', Body, ...checksum })).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'BadDigest', $metadata: { httpStatusCode: 400 } });
    }
    await expect(aws.s3.send(new HeadObjectCommand({ Bucket, Key: 'bad' }))).rejects.toMatchObject({ name: 'NotFound' });
  });

  it('refuses a part whose CRC32 does not match', async () => {
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'parts', ChecksumAlgorithm: 'CRC32' }));
    try {
      const err = await aws.s3
        .send(new UploadPartCommand({ Bucket, Key: 'parts', UploadId, PartNumber: 1, Body: randomBytes(1000), ChecksumAlgorithm: 'CRC32', ChecksumCRC32: wrongCrc32 }))
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'BadDigest' });
    } finally {
      await aws.s3.send(new AbortMultipartUploadCommand({ Bucket, Key: 'parts', UploadId }));
    }
  });

  it('accepts what the SDK sends with its own checksums', async () => {
    await aws.s3.send(new PutObjectCommand({ Bucket, Key: 'good', Body: randomBytes(1000) }));
    expect((await aws.s3.send(new HeadObjectCommand({ Bucket, Key: 'good' }))).ContentLength).toBe(1000);
  });
});

/**
 * What a copy of an object uploaded in parts is verified with (ServerSideCopier): the composite
 * checksum, each part's size and checksum, and the checksum of each part copied, as S3 reports them.
 */
describe('the emulator reports part checksums as S3 does', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest();
  const parts = [randomBytes(5 * 1024 * 1024), randomBytes(5 * 1024 * 1024), randomBytes(1000)];
  let VersionId: string | undefined;

  beforeAll(async () => {
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'in-parts', ChecksumAlgorithm: 'SHA256' }));
    const done = [];
    for (const [i, Body] of parts.entries()) {
      const ChecksumSHA256 = b64(sha(Body));
      const out = await aws.s3.send(new UploadPartCommand({ Bucket, Key: 'in-parts', UploadId, PartNumber: i + 1, Body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256 }));
      done.push({ PartNumber: i + 1, ETag: out.ETag, ChecksumSHA256 });
    }
    VersionId = (await aws.s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'in-parts', UploadId, MultipartUpload: { Parts: done } }))).VersionId;
  });

  it('HeadObject reports the composite SHA-256 as "<base64>-<parts>" with checksum type COMPOSITE', async () => {
    const head = await aws.s3.send(new HeadObjectCommand({ Bucket, Key: 'in-parts', ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumSHA256).toBe(`${b64(sha(Buffer.concat(parts.map(sha))))}-3`);
    expect(head.ChecksumType).toBe('COMPOSITE');
  });

  it('GetObjectAttributes lists every part with its size and SHA-256, page by page', async () => {
    const seen = [];
    let PartNumberMarker: string | undefined;
    for (;;) {
      const out = await aws.s3.send(
        new GetObjectAttributesCommand({ Bucket, Key: 'in-parts', VersionId, ObjectAttributes: ['ObjectParts', 'ObjectSize'], MaxParts: 2, PartNumberMarker }),
      );
      expect(out.ObjectParts?.TotalPartsCount).toBe(3);
      expect(out.ObjectSize).toBe(parts.reduce((n, p) => n + p.length, 0));
      seen.push(...(out.ObjectParts?.Parts ?? []));
      if (!out.ObjectParts?.IsTruncated) break;
      PartNumberMarker = out.ObjectParts.NextPartNumberMarker;
    }
    expect(seen).toEqual(parts.map((p, i) => ({ PartNumber: i + 1, Size: p.length, ChecksumSHA256: b64(sha(p)) })));
  });

  it('UploadPartCopy into an upload created with SHA-256 returns the SHA-256 of the copied bytes', async () => {
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'copied', ChecksumAlgorithm: 'SHA256', ChecksumType: 'COMPOSITE' }));
    try {
      const out = await aws.s3.send(
        new UploadPartCopyCommand({ Bucket, Key: 'copied', UploadId, PartNumber: 1, CopySource: `${Bucket}/in-parts?versionId=${VersionId}`, CopySourceRange: `bytes=0-${parts[0]!.length - 1}` }),
      );
      expect(out.CopyPartResult?.ChecksumSHA256).toBe(b64(sha(parts[0]!)));
    } finally {
      await aws.s3.send(new AbortMultipartUploadCommand({ Bucket, Key: 'copied', UploadId }));
    }
  });
});

/**
 * The emulator (packages/local-stack/bin/emulator.py, started by the global setup) lists object versions from
 * the keys under the prefix only (moto would copy the whole bucket first): the answers must be
 * what S3 answers, pages and latest flags included.
 */
describe('emulator: ListObjectVersions', () => {
  const Versioned = `t-versions-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    await aws.s3.send(new CreateBucketCommand({ Bucket: Versioned }));
    await aws.s3.send(new PutBucketVersioningCommand({ Bucket: Versioned, VersioningConfiguration: { Status: 'Enabled' } }));
    for (const [key, times] of [['users/a/1', 3], ['users/a/2', 2], ['users/b/1', 1], ['other/1', 2]] as const) {
      for (let i = 0; i < times; i += 1) await aws.s3.send(new PutObjectCommand({ Bucket: Versioned, Key: key, Body: `${key} v${i}` }));
    }
    await aws.s3.send(new DeleteObjectCommand({ Bucket: Versioned, Key: 'users/a/2' }));
  });

  const list = async (Prefix: string, MaxKeys?: number) => {
    const versions: string[] = [];
    const markers: string[] = [];
    for await (const page of paginateObjectVersions(aws.s3, { Bucket: Versioned, Prefix, ...(MaxKeys ? { MaxKeys } : {}) })) {
      for (const v of page.Versions ?? []) versions.push(`${v.Key}${v.IsLatest ? ' latest' : ''}`);
      for (const m of page.DeleteMarkers ?? []) markers.push(`${m.Key}${m.IsLatest ? ' latest' : ''}`);
    }
    return { versions, markers };
  };

  it('a prefix lists exactly the versions of the keys under it, the newest of each key marked latest', async () => {
    expect(await list('users/a/')).toEqual({
      versions: ['users/a/1 latest', 'users/a/1', 'users/a/1', 'users/a/2', 'users/a/2'],
      markers: ['users/a/2 latest'],
    });
    expect(await list('users/b/1')).toEqual({ versions: ['users/b/1 latest'], markers: [] });
    expect(await list('nothing/')).toEqual({ versions: [], markers: [] });
  });

  it('without a prefix every key is listed, and pages of one item add up to the same list', async () => {
    const all = await list('');
    expect(all.versions).toHaveLength(8);
    expect(all.versions.filter((v) => v.startsWith('other/'))).toEqual(['other/1 latest', 'other/1']);
    expect(await list('', 1)).toEqual(all);
    expect(await list('users/', 1)).toEqual(await list('users/'));
  });
});

/**
 * DynamoDB applies a TransactWriteItems whose ClientRequestToken it has seen succeed (within 10
 * minutes) only once; moto applies every repeat, so the emulator keeps the tokens. The product's
 * usage-counter retries rely on it (a retry after a lost answer must not count twice).
 */
describe('emulator: TransactWriteItems ClientRequestToken', () => {
  const TableName = loadConfig(ResourceNames, process.env).FILES_TABLE;
  const Key = { userId: `emulator-test-${randomBytes(4).toString('hex')}`, fileId: '#usage' };
  const add = (n: number, ClientRequestToken: string) =>
    new TransactWriteCommand({
      ClientRequestToken,
      TransactItems: [{ Update: { TableName, Key, UpdateExpression: 'ADD reservedBytes :n', ExpressionAttributeValues: { ':n': n } } }],
    });
  const reserved = async () =>
    Number((await aws.dynamo.send(new GetCommand({ TableName, Key, ConsistentRead: true }))).Item?.reservedBytes ?? 0);

  it('a repeat of a transaction that succeeded succeeds without applying it again', async () => {
    const token = randomUUID();
    await aws.dynamo.send(add(5, token));
    await aws.dynamo.send(add(5, token));
    expect(await reserved()).toBe(5);
    await aws.dynamo.send(add(5, randomUUID()));
    expect(await reserved()).toBe(10);
  });

  it('another request under the same token is refused with IdempotentParameterMismatchException', async () => {
    const token = randomUUID();
    const before = await reserved();
    await aws.dynamo.send(add(1, token));
    await expect(aws.dynamo.send(add(2, token))).rejects.toMatchObject({ name: 'IdempotentParameterMismatchException' });
    expect(await reserved()).toBe(before + 1);
  });
});
