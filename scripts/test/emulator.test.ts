import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, UploadPartCommand, CreateMultipartUploadCommand, AbortMultipartUploadCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '@scs/common';
import { createHash, randomBytes } from 'node:crypto';

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
