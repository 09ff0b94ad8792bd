import { GetObjectCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { UploadConfig } from '@scs/upload/config';
import { fileKey } from '@scs/common/files';
import { ObjectStore } from '@scs/upload/storage/object-store';
import { uuidv7 } from '@scs/upload/files/ids';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { s3Leftovers } from '@scs/testing/files';
import { FaultProxy } from '@scs/testing/fault-proxy';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The upload service's part writer with S3 behind the fault proxy (in front of the tests'
 * emulator): connections reset mid-part, S3 unreachable. What the writer leaves is checked
 * through a direct client.
 */
describe('the part writer when S3 fails mid-part', () => {
  let direct: AwsClients;
  let proxied: AwsClients;
  let proxy: FaultProxy;
  let config: UploadConfig;
  const log = { warn: jest.fn(), error: jest.fn() };

  beforeAll(async () => {
    const endpoint = new URL(process.env.AWS_ENDPOINT_URL ?? '');
    proxy = new FaultProxy({ host: endpoint.hostname, port: Number(endpoint.port) });
    await proxy.start();
    const settings = { AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 10_000 };
    direct = createAwsClients({ ...settings, AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL });
    proxied = createAwsClients({ ...settings, AWS_ENDPOINT_URL: proxy.url });
    config = loadConfig(UploadConfig, { ...process.env, UPLOAD_PART_BYTES: String(5 * MiB), UPLOAD_QUEUE_SIZE: '2', UPLOAD_PART_BUFFERS: '3' });
  });
  afterAll(async () => {
    await proxy.stop();
    direct.destroy();
    proxied.destroy();
  });
  beforeEach(() => {
    proxy.clear();
    log.warn.mockClear();
    log.error.mockClear();
  });

  const file = () => ({ userId: randomUUID(), fileId: uuidv7(), name: 'faults.png', contentType: 'image/png', sensitive: false });
  /** 64 KiB chunks, counting how many were read. */
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

  it('R1: a part whose connection is reset is sent again by the SDK, and the file is stored with exactly its bytes', async () => {
    const store = await ObjectStore.create(proxied.s3, config);
    // Parts meet a reset once their connection carried 1 MiB; the proxy is healed as the first attempt after a reset leaves.
    const resets = proxy.stats.resets;
    proxied.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand' && proxy.stats.resets > resets) proxy.clear();
        return next(args);
      },
      { step: 'finalizeRequest', name: 'healOnRetry' },
    );
    try {
      const f = file();
      const content = randomBytes(7 * MiB);
      proxy.set({ resetAfterBytes: MiB });
      await store.writeFile(f, chunked(content).source, { contentType: () => undefined, signal: new AbortController().signal, log });
      expect(proxy.stats.resets).toBeGreaterThan(resets);
      const out = await direct.s3.send(new GetObjectCommand({ Bucket: config.PRIMARY_BUCKET, Key: fileKey(f.userId, f.fileId) }));
      const stored = Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      expect(sha256(stored)).toBe(sha256(content));
      expect(await s3Leftovers(direct, config.PRIMARY_BUCKET, f.userId)).toEqual({ objects: 1, multipartUploads: 0 });
    } finally {
      proxied.s3.middlewareStack.remove('healOnRetry');
    }
  });

  it('R1: S3 dies mid-part (every attempt reset): the write fails with the network error, stops reading, and leaves no object and no open multipart upload', async () => {
    const store = await ObjectStore.create(proxied.s3, config);
    const f = file();
    const { source, read } = chunked(randomBytes(40 * MiB));
    // Parts (5 MiB) never get through; the small clean-up requests do.
    proxy.set({ resetAfterBytes: 256 * 1024 });
    const writing = store.writeFile(f, source, { contentType: () => undefined, signal: new AbortController().signal, log });
    await expect(writing).rejects.toThrow(/ECONNRESET|socket hang up|EPIPE/);
    // The rest of the 640 chunks was not read: at most the parts in flight, the buffers and what the stream buffered.
    expect(read.chunks).toBeLessThan(640);
    expect(source.destroyed).toBe(true);
    expect(await s3Leftovers(direct, config.PRIMARY_BUCKET, f.userId)).toEqual({ objects: 0, multipartUploads: 0 });
    expect(log.error).not.toHaveBeenCalled();
  });

  it('R1: S3 unreachable after the first part: the write fails, and the multipart upload is aborted once S3 is back', async () => {
    const store = await ObjectStore.create(proxied.s3, config);
    const f = file();
    const content = randomBytes(16 * MiB);
    let stopped: Promise<void> | undefined;
    // S3 goes away as the second part leaves.
    let parts = 0;
    proxied.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand' && (parts += 1) === 2) stopped = proxy.stop();
        await stopped;
        return next(args);
      },
      { step: 'finalizeRequest', name: 'outageAtPart2' },
    );
    try {
      await expect(store.writeFile(f, chunked(content).source, { contentType: () => undefined, signal: new AbortController().signal, log })).rejects.toThrow();
      // The clean-up met the outage too: it is retried in the background.
      expect(log.warn).toHaveBeenCalledWith(expect.anything(), 'removing what a failed upload left in S3 failed; retrying it in the background');
      expect((await s3Leftovers(direct, config.PRIMARY_BUCKET, f.userId)).multipartUploads).toBe(1);
      await proxy.start();
      await store.settled(60_000);
      expect(await s3Leftovers(direct, config.PRIMARY_BUCKET, f.userId)).toEqual({ objects: 0, multipartUploads: 0 });
      expect(log.error).not.toHaveBeenCalled();
    } finally {
      proxied.s3.middlewareStack.remove('outageAtPart2');
      await proxy.start();
    }
  });
});
