import { GetObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { UploadConfig } from '../src/config';
import { crc32Base64, PartBuffers, PartWriter, type PartTarget } from '../src/storage/part-writer';
import { pngBytes, s3Leftovers, sha256 } from './helpers';

const MiB = 1024 * 1024;

/** Resolves once `ready()` holds, checked after each turn of the event loop (no timers). */
async function turnsUntil(ready: () => boolean, maxTurns = 10_000): Promise<void> {
  for (let i = 0; i < maxTurns; i += 1) {
    if (ready()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error('the condition never held');
}

describe('PartBuffers: a fixed pool of reused part buffers', () => {
  it('allocates the reserved buffers at once, then more on demand up to the maximum, and reuses what is given back', async () => {
    const pool = new PartBuffers(1024, 3, 2);
    expect(pool.stats).toEqual({ made: 2, idle: 2, waiting: 0 });
    const signal = new AbortController().signal;
    const a = await pool.take(signal);
    const b = await pool.take(signal);
    const c = await pool.take(signal);
    expect(pool.stats).toEqual({ made: 3, idle: 0, waiting: 0 });
    expect(new Set([a, b, c]).size).toBe(3);
    pool.give(b);
    expect(await pool.take(signal)).toBe(b);
    expect(pool.stats.made).toBe(3);
  });

  it('makes a taker wait while every buffer is taken, and hands buffers back in the order they were asked for', async () => {
    const pool = new PartBuffers(1024, 1);
    const signal = new AbortController().signal;
    const only = await pool.take(signal);
    const order: string[] = [];
    const first = pool.take(signal).then((b) => (order.push('first'), b));
    const second = pool.take(signal).then((b) => (order.push('second'), b));
    expect(pool.stats).toEqual({ made: 1, idle: 0, waiting: 2 });
    pool.give(only);
    expect(await first).toBe(only);
    pool.give(only);
    expect(await second).toBe(only);
    expect(order).toEqual(['first', 'second']);
    expect(pool.stats).toEqual({ made: 1, idle: 0, waiting: 0 });
  });

  it('a taker whose signal aborts stops waiting with its reason and no longer counts as waiting', async () => {
    const pool = new PartBuffers(1024, 1);
    const held = await pool.take(new AbortController().signal);
    const gone = new AbortController();
    const waiting = pool.take(gone.signal);
    expect(pool.stats.waiting).toBe(1);
    gone.abort(new Error('the client went away'));
    await expect(waiting).rejects.toThrow('the client went away');
    expect(pool.stats.waiting).toBe(0);
    pool.give(held);
    expect(pool.stats.idle).toBe(1);
    await expect(pool.take(gone.signal)).rejects.toThrow('the client went away');
  });

  it('refuses a pool without buffers', () => {
    expect(() => new PartBuffers(1024, 0)).toThrow(RangeError);
  });
});

describe('crc32Base64', () => {
  it('gives the CRC32 as S3 carries it (big-endian, base64)', () => {
    expect(crc32Base64(0)).toBe('AAAAAA==');
    // CRC32("123456789") = 0xCBF43926, the standard check value.
    expect(crc32Base64(0xcbf43926)).toBe(Buffer.from([0xcb, 0xf4, 0x39, 0x26]).toString('base64'));
  });
});

describe('PartWriter against the emulator', () => {
  let aws: AwsClients;
  let bucket: string;
  beforeAll(() => {
    const config = loadConfig(UploadConfig, process.env);
    aws = createAwsClients(config);
    bucket = config.PRIMARY_BUCKET;
  });
  afterAll(() => aws.destroy());

  const target = (userId: string): PartTarget => ({
    Bucket: bucket,
    Key: `users/${userId}/${randomUUID()}`,
    Tagging: 'sensitive=false',
    attributes: () => ({ ContentType: 'image/png', ContentDisposition: 'attachment', ServerSideEncryption: 'AES256', Metadata: { owner: userId } }),
  });
  const stored = async (t: PartTarget) => {
    const out = await aws.s3.send(new GetObjectCommand({ Bucket: t.Bucket, Key: t.Key }));
    return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  };
  /** `content` as a stream of 64 KiB chunks (what the multipart parser hands on), counting the chunks read. */
  const chunked = (content: Buffer) => {
    const read = { chunks: 0 };
    function* chunks() {
      for (let i = 0; i < content.length; i += 64 * 1024) {
        read.chunks += 1;
        yield content.subarray(i, i + 64 * 1024);
      }
    }
    return { source: Readable.from(chunks(), { highWaterMark: 1 }), read };
  };

  it('a file of several parts goes through a pool of one buffer: one buffer reused for every part, the bytes stored as sent', async () => {
    const userId = randomUUID();
    const pool = new PartBuffers(5 * MiB, 1);
    const t = target(userId);
    const content = pngBytes(12 * MiB + 5);
    const writer = new PartWriter(aws.s3, pool, t, 4);
    await writer.write(chunked(content).source, new AbortController().signal);
    expect(pool.stats).toEqual({ made: 1, idle: 1, waiting: 0 });
    expect(sha256(await stored(t))).toBe(sha256(content));
    expect(writer.uploadId).toBeDefined();
    expect(await s3Leftovers(aws, bucket, userId)).toEqual({ objects: 1, multipartUploads: 0 });
  });

  it('back-pressure: while the pool has no free buffer the writer stops reading, and goes on once one is given back', async () => {
    const userId = randomUUID();
    const pool = new PartBuffers(5 * MiB, 1);
    const held = await pool.take(new AbortController().signal);
    const t = target(userId);
    const content = pngBytes(6 * MiB);
    const { source, read } = chunked(content);
    const writing = new PartWriter(aws.s3, pool, t, 4).write(source, new AbortController().signal);
    await turnsUntil(() => pool.stats.waiting === 1);
    // The chunk waiting for a buffer and what the stream buffers ahead: not the file's 96 chunks.
    expect(read.chunks).toBeLessThanOrEqual(3);
    pool.give(held);
    await writing;
    expect(read.chunks).toBe(96);
    expect(sha256(await stored(t))).toBe(sha256(content));
  });

  it('uploads at once share the pool: both files complete with their own bytes, never more buffers than the pool holds', async () => {
    const userId = randomUUID();
    const pool = new PartBuffers(5 * MiB, 2);
    const files = [pngBytes(11 * MiB), pngBytes(16 * MiB + 1)];
    const targets = files.map(() => target(userId));
    await Promise.all(files.map((content, i) => new PartWriter(aws.s3, pool, targets[i] as PartTarget, 2).write(chunked(content).source, new AbortController().signal)));
    expect(pool.stats).toEqual({ made: 2, idle: 2, waiting: 0 });
    for (const [i, content] of files.entries()) expect(sha256(await stored(targets[i] as PartTarget))).toBe(sha256(content));
  });

  it('an upload whose client goes away while it waits for a buffer stops with the reason, having sent nothing', async () => {
    const userId = randomUUID();
    const pool = new PartBuffers(5 * MiB, 1);
    const held = await pool.take(new AbortController().signal);
    const gone = new AbortController();
    const { source } = chunked(pngBytes(6 * MiB));
    const writer = new PartWriter(aws.s3, pool, target(userId), 4);
    const writing = writer.write(source, gone.signal);
    await turnsUntil(() => pool.stats.waiting === 1);
    gone.abort(new Error('the client went away'));
    await expect(writing).rejects.toThrow('the client went away');
    expect(source.destroyed).toBe(true);
    expect(pool.stats.waiting).toBe(0);
    expect(writer).toMatchObject({ uploadId: undefined, mayHaveCreated: false });
    pool.give(held);
    expect(await s3Leftovers(aws, bucket, userId)).toEqual({ objects: 0, multipartUploads: 0 });
  });

  it("a stream that fails (a refused type) fails the write with the stream's error, once the parts in flight are done", async () => {
    const userId = randomUUID();
    const pool = new PartBuffers(5 * MiB, 3);
    const first = pngBytes(11 * MiB);
    async function* failing() {
      for (let i = 0; i < first.length; i += MiB) yield first.subarray(i, i + MiB);
      throw new Error('not a PNG after all');
    }
    const writer = new PartWriter(aws.s3, pool, target(userId), 2);
    await expect(writer.write(Readable.from(failing()), new AbortController().signal)).rejects.toThrow('not a PNG after all');
    // Two parts went out; their buffers are back; the multipart upload is the caller's to abort.
    expect(pool.stats).toMatchObject({ idle: pool.stats.made, waiting: 0 });
    expect(writer.uploadId).toBeDefined();
    expect(writer.mayHaveCreated).toBe(false);
  });
});
