import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { UploadConfig } from '../src/config';
import { uuidv7 } from '../src/files/ids';
import { ObjectStore } from '../src/storage/object-store';
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
 * in flight at once, and optional faults: `corrupt` flips one byte of a request's body after the
 * SDK built and signed it (checksum header included), as a bad link or bad memory would; `before`
 * runs as a request leaves, and fails it by throwing.
 */
function recordingAws(opts: { corrupt?: (s: Sent) => boolean; before?: (s: Sent) => void; after?: (s: Sent) => void } = {}) {
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
      opts.before?.(s);
      const isPart = s.command === 'UploadPartCommand';
      if (isPart) parts.maxInFlight = Math.max(parts.maxInFlight, (parts.inFlight += 1));
      try {
        const out = await next(args);
        opts.after?.(s);
        return out;
      } finally {
        if (isPart) parts.inFlight -= 1;
      }
    },
    { step: 'finalizeRequest', name: 'testRecorder' },
  );
  return { aws, sent, parts };
}

const header = (s: Sent, name: string) => s.headers[name] ?? s.headers[name.toLowerCase()];
/** The headers SigV4 signed, from the Authorization header. */
const signedHeaders = (s: Sent) => /SignedHeaders=([^,]+)/.exec(header(s, 'authorization') ?? '')?.[1]?.split(';') ?? [];
/** A CRC32 as S3 carries it: the four bytes big-endian, base64. */
const crc32Base64 = (bytes: Buffer) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(bytes));
  return out.toString('base64');
};

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
      expect(header(part, 'x-amz-checksum-crc32')).toBe(crc32Base64(part.body as Buffer));
      expect(header(part, 'x-amz-content-sha256')).toBe('UNSIGNED-PAYLOAD');
      expect(signedHeaders(part)).toEqual(expect.arrayContaining(['x-amz-checksum-crc32', 'x-amz-content-sha256']));
    }
    expect(sha256(Buffer.concat(parts.map((p) => p.body as Buffer)))).toBe(sha256(content));
    // At most UPLOAD_QUEUE_SIZE parts in flight at once.
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
    expect(header(put, 'x-amz-checksum-crc32')).toBe(crc32Base64(content));
    expect(header(put, 'x-amz-content-sha256')).toBe('UNSIGNED-PAYLOAD');
    expect(signedHeaders(put)).toContain('x-amz-checksum-crc32');
  });

  it('files at and around the part size are stored with exactly their bytes', async () => {
    const user = await newUser();
    for (const size of [5 * MiB + 1, 5 * MiB, 10 * MiB, 100]) {
      const content = pngBytes(size);
      const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'sized.png', content }]);
      expect(res.statusCode).toBe(201);
      const link = await t.app.inject({ method: 'GET', url: `/api/files/${res.json().id}/download?redirect=false`, headers: user.headers });
      const stored = Buffer.from(await (await fetch(link.json().url)).arrayBuffer());
      expect(stored.length).toBe(size);
      expect(sha256(stored)).toBe(sha256(content));
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

  it('a part S3 refused stops the upload at once: the rest of the file is not sent, and nothing is left', async () => {
    const rec = recordingAws({ corrupt: (s) => s.command === 'UploadPartCommand' && s.input.PartNumber === 1 });
    const t = await buildUploadApp({ UPLOAD_PART_BYTES: String(5 * MiB), UPLOAD_QUEUE_SIZE: '2' }, { aws: rec.aws });
    try {
      const user = await newUser();
      const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'early.png', content: pngBytes(40 * MiB) }]);
      expect(res.statusCode).toBe(500);
      // 8 parts; the refusal of part 1 arrives while at most the two of the queue (and the one
      // after a part that finished first) are on their way.
      const parts = rec.sent.filter((s) => s.command === 'UploadPartCommand');
      expect(parts.length).toBeLessThanOrEqual(4);
      expect(rec.sent.some((s) => s.command === 'AbortMultipartUploadCommand')).toBe(true);
      expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
    } finally {
      await t.app.close();
      rec.aws.destroy();
    }
  });

  it('a file of one part whose bytes changed is refused too: no object, no record', async () => {
    const rec = recordingAws({ corrupt: (s) => s.command === 'PutObjectCommand' });
    const t = await buildUploadApp({}, { aws: rec.aws });
    try {
      const user = await newUser();
      const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'small-bad-link.png', content: pngBytes(200_000) }]);
      expect(res.statusCode).toBe(500);
      expect(await t.waitForLog((l) => JSON.stringify(l.err ?? '').includes('BadDigest'))).toBeDefined();
      expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
      expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toEqual([]);
    } finally {
      await t.app.close();
      rec.aws.destroy();
    }
  });
});

describe('an upload that fails once S3 holds its bytes leaves nothing', () => {
  it('a CompleteMultipartUpload that fails for good: the multipart upload is aborted', async () => {
    const rec = recordingAws({
      before: (s) => {
        if (s.command === 'CompleteMultipartUploadCommand') throw Object.assign(new Error('One or more of the specified parts could not be found.'), { name: 'InvalidPart' });
      },
    });
    const t = await buildUploadApp({ UPLOAD_PART_BYTES: String(5 * MiB) }, { aws: rec.aws });
    try {
      const user = await newUser();
      const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'never-complete.png', content: pngBytes(12 * MiB) }]);
      expect(res.statusCode).toBe(500);
      expect(rec.sent.filter((s) => s.command === 'AbortMultipartUploadCommand')).toHaveLength(1);
      expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
      expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toEqual([]);
    } finally {
      await t.app.close();
      rec.aws.destroy();
    }
  });

  it('an abort that arrives while S3 stores a file of one part: the object S3 completed is removed before the write settles', async () => {
    const gone = new AbortController();
    // The client goes away just as the single PUT leaves: the PUT still lands, and the write fails with the signal's reason.
    const rec = recordingAws({ before: (s) => s.command === 'PutObjectCommand' && gone.abort(new Error('the client went away')) });
    const config = loadConfig(UploadConfig, process.env);
    const store = await ObjectStore.create(rec.aws.s3, config);
    const log = { warn: jest.fn(), error: jest.fn() };
    try {
      const file = { userId: randomUUID(), fileId: uuidv7(), name: 'late.png', contentType: 'image/png', sensitive: false };
      const writing = store.writeFile(file, Readable.from([pngBytes(100_000)]), { contentType: () => undefined, signal: gone.signal, log });
      await expect(writing).rejects.toThrow('the client went away');
      expect(rec.sent.filter((s) => s.command === 'PutObjectCommand')).toHaveLength(1);
      expect(await s3Leftovers(rec.aws, config.PRIMARY_BUCKET, file.userId)).toEqual({ objects: 0, multipartUploads: 0 });
      expect(log.warn).not.toHaveBeenCalled();
      expect(log.error).not.toHaveBeenCalled();
    } finally {
      rec.aws.destroy();
    }
  });

  it('R1: a single PUT S3 stored but whose every answer was lost (connections reset): the write fails and the object is removed', async () => {
    // The emulator cannot lose an answer after it stored the bytes; the reset is injected after each PUT landed.
    const rec = recordingAws({
      after: (s) => {
        if (s.command === 'PutObjectCommand') throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      },
    });
    const config = loadConfig(UploadConfig, process.env);
    const store = await ObjectStore.create(rec.aws.s3, config);
    const log = { warn: jest.fn(), error: jest.fn() };
    try {
      const file = { userId: randomUUID(), fileId: uuidv7(), name: 'lost.png', contentType: 'image/png', sensitive: false };
      const writing = store.writeFile(file, Readable.from([pngBytes(100_000)]), { contentType: () => undefined, signal: new AbortController().signal, log });
      await expect(writing).rejects.toThrow('ECONNRESET');
      expect(rec.sent.filter((s) => s.command === 'PutObjectCommand').length).toBeGreaterThanOrEqual(1);
      expect(await s3Leftovers(rec.aws, config.PRIMARY_BUCKET, file.userId)).toEqual({ objects: 0, multipartUploads: 0 });
      // Not even a noncurrent version of the bytes stays in the versioned bucket.
      const versions = await rec.aws.s3.send(new ListObjectVersionsCommand({ Bucket: config.PRIMARY_BUCKET, Prefix: `users/${file.userId}/` }));
      expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toEqual([]);
      expect(log.error).not.toHaveBeenCalled();
    } finally {
      rec.aws.destroy();
    }
  });
});

describe('an answer lost to a reset after S3 completed the object', () => {
  /** A writer whose first CompleteMultipartUpload lands but loses its answer; `retry` runs as the SDK's retry leaves. */
  async function lostCompletion(retry?: () => void) {
    let completions = 0;
    const rec = recordingAws({
      before: (s) => {
        if (s.command === 'CompleteMultipartUploadCommand' && completions === 1) retry?.();
      },
      after: (s) => {
        // The emulator cannot lose an answer after it completed the object; the reset is injected after the first completion landed.
        if (s.command === 'CompleteMultipartUploadCommand' && (completions += 1) === 1) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      },
    });
    const config = loadConfig(UploadConfig, { ...process.env, UPLOAD_PART_BYTES: String(5 * MiB) });
    const store = await ObjectStore.create(rec.aws.s3, config);
    const log = { warn: jest.fn(), error: jest.fn() };
    const file = { userId: randomUUID(), fileId: uuidv7(), name: 'lost-completion.png', contentType: 'image/png', sensitive: false };
    const content = pngBytes(6 * MiB);
    const writing = store.writeFile(file, Readable.from([content]), { contentType: () => undefined, signal: new AbortController().signal, log });
    const versions = async () => {
      const out = await rec.aws.s3.send(new ListObjectVersionsCommand({ Bucket: config.PRIMARY_BUCKET, Prefix: `users/${file.userId}/` }));
      return [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])];
    };
    return { rec, config, log, file, writing, versions, sent: () => rec.sent.filter((s) => s.command === 'CompleteMultipartUploadCommand').length };
  }

  it('R1: the SDK retries the completion, which S3 answers for the upload it completed: the file is stored once, nothing left open', async () => {
    const { rec, config, log, file, writing, versions, sent } = await lostCompletion();
    try {
      await expect(writing).resolves.toBeUndefined();
      expect(sent()).toBe(2);
      expect(await s3Leftovers(rec.aws, config.PRIMARY_BUCKET, file.userId)).toEqual({ objects: 1, multipartUploads: 0 });
      expect(await versions()).toHaveLength(1);
      expect(log.error).not.toHaveBeenCalled();
    } finally {
      rec.aws.destroy();
    }
  });

  it('R1: a retried completion refused with NoSuchUpload after the first one landed: the write fails and the object it stored is removed', async () => {
    const { rec, config, log, file, writing, versions } = await lostCompletion(() => {
      throw Object.assign(new Error('The specified multipart upload does not exist.'), { name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });
    });
    try {
      await expect(writing).rejects.toThrow('does not exist');
      expect(await s3Leftovers(rec.aws, config.PRIMARY_BUCKET, file.userId)).toEqual({ objects: 0, multipartUploads: 0 });
      expect(await versions()).toEqual([]);
      expect(log.error).not.toHaveBeenCalled();
    } finally {
      rec.aws.destroy();
    }
  });
});
