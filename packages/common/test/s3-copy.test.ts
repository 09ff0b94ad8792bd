import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { createHash, randomBytes } from 'node:crypto';
import { type AwsClients, createAwsClients } from '../src';
import { CopyVerificationError, headWithChecksum, type ObjectRef, ServerSideCopier, type VerifiedCopyRequest } from '../src/s3-copy';

/**
 * ServerSideCopier against the emulator, with the real SDK clients. The limit above which copies
 * are made in parts is lowered to 5 MiB, so the paths S3 takes above 5 GiB run on small objects.
 */
const MiB = 1024 * 1024;
const clients = (): AwsClients =>
  createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 1, AWS_REQUEST_TIMEOUT_MS: 30_000 });
const aws = clients();
const suffix = randomBytes(4).toString('hex');
const Source = `t-copy-source-${suffix}`;
const Target = `t-copy-target-${suffix}`;
let keyId: string;

beforeAll(async () => {
  for (const Bucket of [Source, Target]) {
    await aws.s3.send(new CreateBucketCommand({ Bucket }));
    await aws.s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  }
  keyId = (await aws.kms.send(new CreateKeyCommand({ Description: 'copy test' }))).KeyMetadata?.KeyId as string;
});
afterAll(() => aws.destroy());

const sha = (b: Buffer) => createHash('sha256').update(b).digest();
const hex = (b: Buffer) => sha(b).toString('hex');
let n = 0;
const nextKey = () => `users/u/file-${(n += 1)}`;

/** An object uploaded as the upload service's resumable uploads make it: parts signed for their SHA-256. */
async function uploadInParts(parts: Buffer[]): Promise<ObjectRef & { content: Buffer }> {
  const Key = nextKey();
  const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket: Source, Key, ChecksumAlgorithm: 'SHA256', ServerSideEncryption: 'AES256' }));
  const done = [];
  for (const [i, Body] of parts.entries()) {
    const ChecksumSHA256 = sha(Body).toString('base64');
    const out = await aws.s3.send(new UploadPartCommand({ Bucket: Source, Key, UploadId, PartNumber: i + 1, Body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256 }));
    done.push({ PartNumber: i + 1, ETag: out.ETag, ChecksumSHA256 });
  }
  const out = await aws.s3.send(new CompleteMultipartUploadCommand({ Bucket: Source, Key, UploadId, MultipartUpload: { Parts: done } }));
  return { Bucket: Source, Key, VersionId: out.VersionId, content: Buffer.concat(parts) };
}

async function request(source: ObjectRef & { content: Buffer }): Promise<VerifiedCopyRequest> {
  return {
    source,
    sourceHead: await headWithChecksum(aws.s3, source),
    destination: { Bucket: Target, Key: source.Key },
    encryption: { type: 'aws:kms', keyId },
    sha256: hex(source.content),
    contentType: 'application/octet-stream',
    metadata: { owner: 'u' },
    tagging: 'sensitive=true',
  };
}

const copierOn = (s3Clients: AwsClients) => new ServerSideCopier(s3Clients.s3, s3Clients.kms, { multipartAboveBytes: 5 * MiB, partBytes: 5 * MiB });

/** Clients whose answers from S3 pass through `alter` first: a wrong answer the emulator cannot be made to give. */
function alteredClients(alter: (command: string, input: Record<string, unknown>, output: object) => void): AwsClients {
  const altered = clients();
  altered.s3.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      alter(context.commandName as string, args.input as Record<string, unknown>, result.output);
      return result;
    },
    { step: 'initialize', name: 'alterAnswer' },
  );
  return altered;
}

async function versionsAt(Key: string) {
  const out = await aws.s3.send(new ListObjectVersionsCommand({ Bucket: Target, Prefix: Key }));
  return (out.Versions ?? []).filter((v) => v.Key === Key);
}
async function openUploadsAt(Key: string) {
  const out = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: Target, Prefix: Key }));
  return (out.Uploads ?? []).filter((u) => u.Key === Key);
}
async function bytesOf(Bucket: string, Key: string, VersionId?: string) {
  const out = await aws.s3.send(new GetObjectCommand({ Bucket, Key, VersionId }));
  return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}
async function partSizes(Bucket: string, Key: string, VersionId?: string) {
  const out = await aws.s3.send(new GetObjectAttributesCommand({ Bucket, Key, VersionId, ObjectAttributes: ['ObjectParts'] }));
  return (out.ObjectParts?.Parts ?? []).map((p) => [p.Size, p.ChecksumSHA256]);
}

describe('a copy of an object uploaded in parts with SHA-256 part checksums, above the single-copy limit', () => {
  it('FU-15: is made with the same part boundaries, each part and the composite SHA-256 verified', async () => {
    // Parts of uneven size, none of them the copier's own part size: the boundaries must be the source's.
    const source = await uploadInParts([randomBytes(6 * MiB), randomBytes(5 * MiB + 7), randomBytes(1234)]);
    const req = await request(source);
    expect(req.sourceHead.ChecksumSHA256).toMatch(/-3$/);

    const copy = await copierOn(aws).copy(req);

    expect(copy).toEqual({ versionId: expect.any(String), size: source.content.length, verifiedWith: 'SHA256', checksumType: 'COMPOSITE' });
    const head = await headWithChecksum(aws.s3, { Bucket: Target, Key: source.Key, VersionId: copy.versionId });
    expect(head.ChecksumSHA256).toBe(req.sourceHead.ChecksumSHA256);
    expect(head.ChecksumType).toBe('COMPOSITE');
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.Metadata).toEqual({ owner: 'u' });
    expect(await partSizes(Target, source.Key, copy.versionId)).toEqual(await partSizes(Source, source.Key, source.VersionId));
    // Digests compared: jest compares two large buffers byte by byte, slowly.
    expect(hex(await bytesOf(Target, source.Key, copy.versionId))).toBe(hex(source.content));
  });

  it('FU-15: a part whose copy S3 reports with another SHA-256 fails the copy: the upload is aborted, nothing is left', async () => {
    const source = await uploadInParts([randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(100)]);
    const tampered = alteredClients((command, input, output) => {
      if (command === 'UploadPartCopyCommand' && input.PartNumber === 2) {
        (output as { CopyPartResult: { ChecksumSHA256?: string } }).CopyPartResult.ChecksumSHA256 = sha(Buffer.from('other bytes')).toString('base64');
      }
    });
    try {
      const err = await copierOn(tampered).copy(await request(source)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CopyVerificationError);
      expect((err as Error).message).toMatch(/part 2 /);
    } finally {
      tampered.destroy();
    }
    expect(await versionsAt(source.Key)).toHaveLength(0);
    expect(await openUploadsAt(source.Key)).toHaveLength(0);
  });

  it('a part copy S3 reports without a SHA-256 fails the copy as well', async () => {
    const source = await uploadInParts([randomBytes(5 * MiB), randomBytes(100)]);
    const silent = alteredClients((command, _input, output) => {
      if (command === 'UploadPartCopyCommand') delete (output as { CopyPartResult: { ChecksumSHA256?: string } }).CopyPartResult.ChecksumSHA256;
    });
    try {
      const err = await copierOn(silent).copy(await request(source)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CopyVerificationError);
      expect((err as Error).message).toMatch(/part \d .*\(none reported\)/);
    } finally {
      silent.destroy();
    }
    expect(await versionsAt(source.Key)).toHaveLength(0);
    expect(await openUploadsAt(source.Key)).toHaveLength(0);
  });

  it('FU-15: a completed copy whose composite SHA-256 differs from the source is deleted again', async () => {
    const source = await uploadInParts([randomBytes(5 * MiB), randomBytes(100)]);
    const tampered = alteredClients((command, input, output) => {
      if (command === 'HeadObjectCommand' && input.Bucket === Target) (output as { ChecksumSHA256?: string }).ChecksumSHA256 = `${sha(Buffer.from('x')).toString('base64')}-2`;
    });
    try {
      const err = await copierOn(tampered).copy(await request(source)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CopyVerificationError);
      expect((err as Error).message).toMatch(/^the copy of .* has SHA256 .*-2, not .*-2$/);
    } finally {
      tampered.destroy();
    }
    expect(await versionsAt(source.Key)).toHaveLength(0);
  });

  it('a part list that does not make up the source checksum is refused before anything is written', async () => {
    const source = await uploadInParts([randomBytes(5 * MiB), randomBytes(100)]);
    const reordered = alteredClients((command, _input, output) => {
      const parts = (output as { ObjectParts?: { Parts?: unknown[] } }).ObjectParts?.Parts;
      if (command === 'GetObjectAttributesCommand' && parts) parts.reverse();
    });
    try {
      const err = await copierOn(reordered).copy(await request(source)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CopyVerificationError);
      expect((err as Error).message).toMatch(/do not make up its checksum|parts of .* holding/);
    } finally {
      reordered.destroy();
    }
    expect(await versionsAt(source.Key)).toHaveLength(0);
    expect(await openUploadsAt(source.Key)).toHaveLength(0);
  });

  it('a source with neither a full-object nor a composite checksum is refused before anything is written', async () => {
    const source = await uploadInParts([randomBytes(5 * MiB), randomBytes(100)]);
    const req = await request(source);
    await expect(copierOn(aws).copy({ ...req, sourceHead: { ...req.sourceHead, ChecksumSHA256: undefined } })).rejects.toBeInstanceOf(
      CopyVerificationError,
    );
    expect(await versionsAt(source.Key)).toHaveLength(0);
    expect(await openUploadsAt(source.Key)).toHaveLength(0);
  });
});

describe('the other paths are unchanged', () => {
  it('up to the limit: one CopyObject, verified with the recorded SHA-256 (an object uploaded in parts included)', async () => {
    const source = await uploadInParts([randomBytes(5 * MiB)]);
    const copy = await new ServerSideCopier(aws.s3, aws.kms, { multipartAboveBytes: 5 * MiB }).copy(await request(source));
    expect(copy).toMatchObject({ verifiedWith: 'SHA256', checksumType: 'FULL_OBJECT' });
    const head = await headWithChecksum(aws.s3, { Bucket: Target, Key: source.Key, VersionId: copy.versionId });
    expect(head.ChecksumSHA256).toBe(sha(source.content).toString('base64'));
  });

  it('above the limit, a source with a full-object CRC: parts of the configured size, verified with that CRC', async () => {
    const Key = nextKey();
    const content = randomBytes(12 * MiB);
    const put = await aws.s3.send(new PutObjectCommand({ Bucket: Source, Key, Body: content, ChecksumAlgorithm: 'CRC32' }));
    const copy = await copierOn(aws).copy(await request({ Bucket: Source, Key, VersionId: put.VersionId, content }));
    expect(copy).toMatchObject({ verifiedWith: 'CRC32', checksumType: 'FULL_OBJECT' });
    const head = await headWithChecksum(aws.s3, { Bucket: Target, Key, VersionId: copy.versionId });
    expect(head.ETag).toMatch(/-3"$/);
    expect(hex(await bytesOf(Target, Key, copy.versionId))).toBe(hex(content));
  });

  it('a copy with the wrong recorded SHA-256 is deleted again', async () => {
    const source = await uploadInParts([randomBytes(1000)]);
    const req = await request(source);
    await expect(copierOn(aws).copy({ ...req, sha256: hex(Buffer.from('other')) })).rejects.toBeInstanceOf(CopyVerificationError);
    expect(await versionsAt(source.Key)).toHaveLength(0);
  });
});
