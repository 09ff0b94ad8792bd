import {
  CreateMultipartUploadCommand,
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createAwsClients, loadConfig } from '@scs/common';
import type { FinalizeRequestMiddleware } from '@smithy/types';
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { UploadConfig } from '../src/config';
import { unsignedPayloadWithChecksum } from '../src/storage/unsigned-payload';

const config = loadConfig(UploadConfig, process.env);
const Bucket = config.PRIMARY_BUCKET;
const prefix = `unsigned-payload-test/${randomUUID()}/`;
const EMPTY_SHA256 = createHash('sha256').digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A signed request as it left the client. */
interface Signed {
  command: string;
  headers: Record<string, string>;
}

/**
 * An S3 client against the emulator (the service's, or one that computes checksums only where S3
 * requires them), with or without the plugin, that records every signed request.
 */
function client(opts: { plugin: boolean; checksums?: 'WHEN_REQUIRED' }) {
  const s3 = opts.checksums
    ? new S3Client({ region: config.AWS_REGION, endpoint: config.AWS_ENDPOINT_URL, forcePathStyle: true, requestChecksumCalculation: opts.checksums })
    : createAwsClients({ AWS_REGION: config.AWS_REGION, AWS_ENDPOINT_URL: config.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 1, AWS_REQUEST_TIMEOUT_MS: 10_000 }).s3;
  if (opts.plugin) s3.middlewareStack.use(unsignedPayloadWithChecksum);
  const signed: Signed[] = [];
  const recorder: FinalizeRequestMiddleware<ServiceInputTypes, ServiceOutputTypes> = (next, context) => async (args) => {
    signed.push({ command: context.commandName ?? '', headers: { ...(args.request as { headers: Record<string, string> }).headers } });
    return next(args);
  };
  s3.middlewareStack.addRelativeTo(recorder, { name: 'testSignedRecorder', relation: 'after', toMiddleware: 'httpSigningMiddleware' });
  const last = (command: string) => signed.filter((s) => s.command === command).at(-1) as Signed;
  return { s3, signed, last };
}

const signedHeaders = (s: Signed) => /SignedHeaders=([^,]+)/.exec(s.headers.authorization ?? '')?.[1]?.split(';') ?? [];

const withPlugin = client({ plugin: true });
const plain = client({ plugin: false });

afterAll(async () => {
  const versions = await withPlugin.s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: prefix }));
  for (const v of [...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]) {
    await withPlugin.s3.send(new DeleteObjectCommand({ Bucket, Key: v.Key, VersionId: v.VersionId }));
  }
  withPlugin.s3.destroy();
  plain.s3.destroy();
});

describe('unsignedPayloadWithChecksum: a body that carries a checksum S3 verifies is not hashed again for the signature', () => {
  it('a PutObject with the SDK CRC32 (or a SHA-256 of its own) is signed with an unsigned payload, the checksum signed, and S3 stores it', async () => {
    const body = Buffer.from('the bytes of a file, under a checksum S3 verifies');
    await withPlugin.s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}crc32`, Body: body, ChecksumAlgorithm: 'CRC32' }));
    const put = withPlugin.last('PutObjectCommand');
    expect(put.headers['x-amz-checksum-crc32']).toBeDefined();
    expect(put.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(signedHeaders(put)).toEqual(expect.arrayContaining(['x-amz-checksum-crc32', 'x-amz-content-sha256']));
    const got = await withPlugin.s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}crc32` }));
    expect(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body)).toBe(true);

    await withPlugin.s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}sha256`, Body: body, ChecksumAlgorithm: 'SHA256' }));
    const sha = withPlugin.last('PutObjectCommand');
    expect(sha.headers['x-amz-checksum-sha256']).toBe(createHash('sha256').update(body).digest('base64'));
    expect(sha.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
  });

  it('without the plugin the same request has its payload hashed (the control)', async () => {
    const body = Buffer.from('hashed twice without the plugin');
    await plain.s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}plain`, Body: body, ChecksumAlgorithm: 'CRC32' }));
    const put = plain.last('PutObjectCommand');
    expect(put.headers['x-amz-checksum-crc32']).toBeDefined();
    expect(put.headers['x-amz-content-sha256']).toBe(sha256(body));
  });

  it('a body without a checksum keeps its signed payload hash', async () => {
    const noChecksum = client({ plugin: true, checksums: 'WHEN_REQUIRED' });
    try {
      const body = Buffer.from('no checksum asked for');
      await noChecksum.s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}no-checksum`, Body: body }));
      const put = noChecksum.last('PutObjectCommand');
      expect(Object.keys(put.headers).filter((h) => h.startsWith('x-amz-checksum-'))).toEqual([]);
      expect(put.headers['x-amz-content-sha256']).toBe(sha256(body));
    } finally {
      noChecksum.s3.destroy();
    }
  });

  it("a streamed body keeps the SDK's own STREAMING-UNSIGNED-PAYLOAD-TRAILER", async () => {
    const body = Buffer.from('streamed, with the checksum in a trailer');
    await withPlugin.s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}stream`, Body: Readable.from([body]), ContentLength: body.length }));
    const put = withPlugin.last('PutObjectCommand');
    expect(put.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(put.headers['x-amz-trailer']).toBe('x-amz-checksum-crc32');
  });

  it('requests without a body checksum (GET with checksum mode, HEAD, CreateMultipartUpload with its algorithm) sign the empty payload as before', async () => {
    await withPlugin.s3.send(new HeadObjectCommand({ Bucket, Key: `${prefix}crc32` }));
    const got = await withPlugin.s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}crc32`, ChecksumMode: 'ENABLED' }));
    await (got.Body as Readable).resume();
    const created = await withPlugin.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: `${prefix}mpu`, ChecksumAlgorithm: 'CRC32' }));
    await withPlugin.s3.send(new AbortMultipartUploadCommand({ Bucket, Key: `${prefix}mpu`, UploadId: created.UploadId }));
    expect(withPlugin.last('GetObjectCommand').headers['x-amz-checksum-mode']).toBe('ENABLED');
    expect(withPlugin.last('CreateMultipartUploadCommand').headers['x-amz-checksum-algorithm']).toBe('CRC32');
    for (const command of ['HeadObjectCommand', 'GetObjectCommand', 'CreateMultipartUploadCommand', 'AbortMultipartUploadCommand']) {
      expect([command, withPlugin.last(command).headers['x-amz-content-sha256']]).toEqual([command, EMPTY_SHA256]);
    }
  });

  it('a small request body with a checksum (PutObjectTagging) is sent the same way and accepted', async () => {
    await withPlugin.s3.send(new PutObjectTaggingCommand({ Bucket, Key: `${prefix}crc32`, Tagging: { TagSet: [{ Key: 'sha256', Value: 'x' }] } }));
    const tagging = withPlugin.last('PutObjectTaggingCommand');
    expect(tagging.headers['x-amz-checksum-crc32']).toBeDefined();
    expect(tagging.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    const stored = await withPlugin.s3.send(new GetObjectTaggingCommand({ Bucket, Key: `${prefix}crc32` }));
    expect(stored.TagSet).toEqual([{ Key: 'sha256', Value: 'x' }]);
  });
});

describe('unsignedPayloadWithChecksum leaves presigned URLs and POSTs alone', () => {
  const signingDate = new Date('2026-01-02T03:04:05Z');

  it.each([
    ['GET', () => new GetObjectCommand({ Bucket, Key: `${prefix}crc32`, ResponseContentDisposition: 'attachment; filename="a.txt"' })],
    ['PUT', () => new PutObjectCommand({ Bucket, Key: `${prefix}presigned-put` })],
  ])('a presigned %s URL is the same with and without the plugin', async (_method, command) => {
    const a = await getSignedUrl(withPlugin.s3, command(), { expiresIn: 60, signingDate });
    const b = await getSignedUrl(plain.s3, command(), { expiresIn: 60, signingDate });
    expect(a).toBe(b);
    expect(new URL(a).searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a presigned POST is the same with and without the plugin', async () => {
    jest.useFakeTimers({ now: signingDate, doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'] });
    // The clients' clock corrections (learnt from the emulator's Date headers) set to none, so both sign at `signingDate`.
    for (const c of [withPlugin, plain]) c.s3.config.systemClockOffset = 0;
    try {
      const post = (s3: S3Client) =>
        createPresignedPost(s3, { Bucket, Key: `${prefix}post`, Conditions: [['content-length-range', 1, 10]], Fields: { 'Content-Type': 'text/plain' }, Expires: 60 });
      const a = await post(withPlugin.s3);
      expect(a.fields['X-Amz-Date']).toBe('20260102T030405Z');
      expect(a).toEqual(await post(plain.s3));
    } finally {
      jest.useRealTimers();
    }
  });
});
