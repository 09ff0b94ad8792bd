import { type AwsClients, createAwsClients } from '@scs/common';
import { crc32 } from 'node:zlib';
import { crc32Base64 } from '../src/services/object-store';
import { buildUploadApp, closeAuth, newUser, pngBytes, s3Leftovers, sha256, upload, type UploadTestApp } from './helpers';

const MiB = 1024 * 1024;

/** One request the service sent to S3, as it went out (after the SDK's build step). */
interface Sent {
  command: string;
  input: Record<string, unknown>;
  headers: Record<string, string>;
  body?: Buffer;
}

/**
 * The service's S3 client with a recorder of every request it sends, the number of part uploads
 * in flight at once, and an optional fault: `corrupt` flips one byte of a request's body after the
 * SDK built it (checksum header included), as a bad link or bad memory would.
 */
function recordingAws(opts: { corrupt?: (s: Sent) => boolean } = {}) {
  const aws: AwsClients = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 10_000 });
  const sent: Sent[] = [];
  const parts = { inFlight: 0, maxInFlight: 0 };
  aws.s3.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers: Record<string, string>; body?: unknown };
      const body = Buffer.isBuffer(request.body) ? request.body : undefined;
      const s: Sent = { command: context.commandName ?? '', input: args.input as Record<string, unknown>, headers: { ...request.headers }, body: body && Buffer.from(body) };
      sent.push(s);
      if (body && body.length > 0 && opts.corrupt?.(s)) body[body.length - 1] = (body[body.length - 1] as number) ^ 0xff;
      const isPart = s.command === 'UploadPartCommand';
      if (isPart) parts.maxInFlight = Math.max(parts.maxInFlight, (parts.inFlight += 1));
      try {
        return await next(args);
      } finally {
        if (isPart) parts.inFlight -= 1;
      }
    },
    { step: 'finalizeRequest', name: 'testRecorder' },
  );
  return { aws, sent, parts };
}

const header = (s: Sent, name: string) => s.headers[name] ?? s.headers[name.toLowerCase()];

afterAll(async () => closeAuth());

describe('FU-15: every byte reaches S3 under a checksum S3 verifies', () => {
  let t: UploadTestApp;
  let rec: ReturnType<typeof recordingAws>;
  beforeAll(async () => {
    rec = recordingAws();
    t = await buildUploadApp({ UPLOAD_PART_BYTES: String(5 * MiB), UPLOAD_QUEUE_SIZE: '2' }, { aws: rec.aws });
  });
  afterAll(async () => {
    await t.app.close();
    rec.aws.destroy();
  });

  it('each part carries the CRC32 of its bytes (unsigned payload, checksum signed), the parts make the file, and the SHA-256 is recorded', async () => {
    const user = await newUser();
    const content = pngBytes(4 * 5 * MiB + 3);
    rec.sent.length = 0;
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'parts.png', content }]);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ size: content.length, sha256: sha256(content) });

    const create = rec.sent.filter((s) => s.command === 'CreateMultipartUploadCommand');
    expect(create).toHaveLength(1);
    expect(header(create[0] as Sent, 'x-amz-checksum-algorithm')).toBe('CRC32');
    const parts = rec.sent.filter((s) => s.command === 'UploadPartCommand').sort((a, b) => Number(a.input.PartNumber) - Number(b.input.PartNumber));
    expect(parts.map((p) => p.body?.length)).toEqual([5 * MiB, 5 * MiB, 5 * MiB, 5 * MiB, 3]);
    for (const part of parts) {
      expect(header(part, 'x-amz-checksum-crc32')).toBe(crc32Base64(crc32(part.body as Buffer)));
      expect(header(part, 'x-amz-content-sha256')).toBe('UNSIGNED-PAYLOAD');
    }
    expect(sha256(Buffer.concat(parts.map((p) => p.body as Buffer)))).toBe(sha256(content));
    // At most UPLOAD_QUEUE_SIZE parts (and so part buffers) in flight at once.
    expect(rec.parts.maxInFlight).toBeLessThanOrEqual(2);
    const complete = rec.sent.find((s) => s.command === 'CompleteMultipartUploadCommand');
    const listed = (complete?.input.MultipartUpload as { Parts: { PartNumber: number; ChecksumCRC32: string }[] }).Parts;
    expect(listed.map((p) => p.ChecksumCRC32)).toEqual(parts.map((p) => header(p, 'x-amz-checksum-crc32')));
    // The digest is recorded (record, API) and tagged on the object.
    const got = await t.app.inject({ method: 'GET', url: `/api/files/${res.json().id}`, headers: user.headers });
    expect(got.json().sha256).toBe(sha256(content));
    const tagging = rec.sent.find((s) => s.command === 'PutObjectTaggingCommand');
    expect(JSON.stringify(tagging?.input)).toContain(sha256(content));
  });

  it('a file smaller than a part is one PUT with the CRC32 of its bytes', async () => {
    const user = await newUser();
    const content = pngBytes(MiB + 7);
    rec.sent.length = 0;
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'one.png', content }]);
    expect(res.statusCode).toBe(201);
    const puts = rec.sent.filter((s) => s.command === 'PutObjectCommand');
    expect(puts).toHaveLength(1);
    expect(rec.sent.some((s) => s.command === 'CreateMultipartUploadCommand')).toBe(false);
    const put = puts[0] as Sent;
    expect(put.body?.equals(content)).toBe(true);
    expect(header(put, 'x-amz-checksum-crc32')).toBe(crc32Base64(crc32(content)));
    expect(header(put, 'x-amz-content-sha256')).toBe('UNSIGNED-PAYLOAD');
  });

  it('part buffers are reused: a smaller file after a larger one is stored with exactly its own bytes', async () => {
    const user = await newUser();
    const large = Buffer.alloc(12 * MiB, 0xaa);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(large);
    expect((await upload(t.app, user.headers, [{ name: 'file', filename: 'large.png', content: large }])).statusCode).toBe(201);
    for (const size of [6 * MiB + 5, 5 * MiB, 100]) {
      const small = pngBytes(size);
      const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'small.png', content: small }]);
      expect(res.statusCode).toBe(201);
      const link = await t.app.inject({ method: 'GET', url: `/api/files/${res.json().id}/download?redirect=false`, headers: user.headers });
      const stored = Buffer.from(await (await fetch(link.json().url)).arrayBuffer());
      expect(stored.length).toBe(size);
      expect(sha256(stored)).toBe(sha256(small));
    }
  });
});

describe('FU-15: S3 refuses bytes that changed after their checksum was taken', () => {
  it('a corrupted part fails the upload: no object, no open multipart upload, no record, the quota released', async () => {
    let corrupted = 0;
    const rec = recordingAws({ corrupt: (s) => s.command === 'UploadPartCommand' && s.input.PartNumber === 2 && (corrupted += 1) === 1 });
    const t = await buildUploadApp({ UPLOAD_PART_BYTES: String(5 * MiB), QUOTA_BYTES: String(16 * MiB) }, { aws: rec.aws });
    try {
      const user = await newUser();
      const content = pngBytes(12 * MiB);
      const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'bad-link.png', content }]);
      expect(corrupted).toBe(1);
      expect(res.statusCode).toBe(500);
      expect(res.json().code).toBe('INTERNAL_ERROR');
      const refused = await t.waitForLog((l) => JSON.stringify(l.err ?? '').includes('BadDigest'));
      expect(refused).toBeDefined();
      expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
      expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toEqual([]);
      // The reservation was released: the same 12 MiB fit in the 16 MiB quota now.
      expect((await upload(t.app, user.headers, [{ name: 'file', filename: 'good-link.png', content }])).statusCode).toBe(201);
    } finally {
      await t.app.close();
      rec.aws.destroy();
    }
  });
});
