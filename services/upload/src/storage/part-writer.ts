import {
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';

/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;

/** A CRC32 as S3 carries it (`x-amz-checksum-crc32`): the four bytes big-endian, base64. */
export function crc32Base64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}

/**
 * The buffers every upload of the process assembles its parts in: at most `max` of
 * `partBytes` each, reused from one part (and one upload) to the next, never freed. `reserved` of
 * them are allocated and written when the pool is made, so one upload's working set is resident
 * from the start and the memory of an upload does not grow with the size of its file; more are
 * allocated as uploads at once need them, up to `max`. Once all `max` are taken, `take` waits (in
 * the order the uploads asked) for one to be given back: the upload stops reading its request
 * meanwhile, which holds the client back (TCP flow control) instead of growing the process.
 *
 * Reusing buffers spares the allocation, page faults and zeroing of a part-sized buffer per part,
 * and the full garbage collections that short-lived part-sized buffers set off. A reused buffer
 * still holds an earlier part's bytes past what the current part wrote: callers only ever read
 * the bytes they wrote themselves (`subarray(0, filled)`).
 */
export class PartBuffers {
  private readonly idle: Buffer[] = [];
  private readonly waiting: { give: (buffer: Buffer) => void }[] = [];
  private made = 0;

  constructor(
    /** Bytes of each buffer (the part size). */
    readonly partBytes: number,
    /** Most buffers the pool ever holds (taken and idle together); at least 1. */
    readonly max: number,
    /** Buffers allocated (and made resident) at once; at most `max`. */
    reserved = 0,
  ) {
    if (!(max >= 1)) throw new RangeError(`a part buffer pool needs at least one buffer, not ${max}`);
    for (; this.made < Math.min(reserved, max); this.made += 1) this.idle.push(Buffer.allocUnsafeSlow(partBytes).fill(0));
  }

  /**
   * A buffer to fill: an idle one, a new one while fewer than `max` exist, or the next one given
   * back. Rejects with `signal.reason` once `signal` aborts before a buffer was handed over.
   */
  take(signal: AbortSignal): Promise<Buffer> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const idle = this.idle.pop();
    if (idle) return Promise.resolve(idle);
    if (this.made < this.max) {
      this.made += 1;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.partBytes));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const waiter = {
        give: (buffer: Buffer) => {
          signal.removeEventListener('abort', gaveUp);
          resolve(buffer);
        },
      };
      const gaveUp = () => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', gaveUp, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Hands a buffer back once nothing reads it any more: to the upload waiting longest, else idle. */
  give(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next) next.give(buffer);
    else this.idle.push(buffer);
  }

  /** Buffers allocated, idle, and uploads waiting for one (for tests and metrics). */
  get stats(): { made: number; idle: number; waiting: number } {
    return { made: this.made, idle: this.idle.length, waiting: this.waiting.length };
  }
}

/** The attributes an object is created with (read once, when the object is created). */
export interface CreateAttributes {
  ContentType: string;
  ContentDisposition: string;
  ServerSideEncryption: 'AES256';
  Metadata: Record<string, string>;
}

/** Where a part writer writes, and what the object is created with. */
export interface PartTarget {
  Bucket: string;
  Key: string;
  /** Tags in the creating request (`k=v&k2=v2`): never tagged afterwards, which would race the mover. */
  Tagging: string;
  /** Read when the object is created: with the first part of a multipart upload, or the single PUT at the end. */
  attributes: () => CreateAttributes;
}

/**
 * Writes one stream into one S3 object with the client's own commands (FU-15):
 *
 * - a stream of at most one part is one `PutObject` once it has ended;
 * - a longer one is a multipart upload (`CreateMultipartUpload` with the first full part,
 *   `UploadPart` for each part, at most `queueSize` of them in flight, then
 *   `CompleteMultipartUpload`).
 *
 * Each chunk of the stream is copied once, into a part buffer from the shared `PartBuffers`, and
 * added to the part's CRC32 (native zlib) while it is still in the cache; every part (and the
 * single PUT) carries that CRC32 (`x-amz-checksum-crc32`), which S3 verifies before it accepts the
 * bytes (400 BadDigest otherwise), and the completion lists them. Each request is the client's
 * `send`, with the client's retries. The writer stops reading the stream while its queue is full
 * or no part buffer is free: back-pressure to the client.
 *
 * `write` resolves once S3 completed the object, and rejects once nothing of this writer is in
 * flight any more (a failure never leaves a request behind that could still store something):
 * with `signal.reason` when `signal` aborted before the object was completed (the client went
 * away, the size limit; also while the creating request was on its way, which is then waited
 * for), with the first part's error when S3 refused a part or could not be reached (the stream is
 * destroyed at once so the rest of the file is not read), or with the stream's own error (a
 * refused type). What is left to clean up is then in `uploadId` (a multipart upload to abort) and
 * `mayHaveCreated` (an object that may exist): the writer itself never deletes.
 */
export class PartWriter {
  /** The multipart upload, once `CreateMultipartUpload` answered. */
  uploadId: string | undefined;
  /**
   * A PutObject or CompleteMultipartUpload was sent and S3 did not refuse it: the object exists,
   * or may (an answer lost to a reset connection or a timeout).
   */
  mayHaveCreated = false;
  /** Parts started so far (also the number of the last one). */
  private partCount = 0;
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private created: Promise<string> | undefined;
  /** The first failure of a part (or of the multipart upload's creation). */
  private failure: { error: unknown } | undefined;
  private readonly failed = new AbortController();

  constructor(
    private readonly s3: S3Client,
    private readonly buffers: PartBuffers,
    private readonly target: PartTarget,
    private readonly queueSize: number,
  ) {}

  /** Writes `source` into the target object (see the class). Call once. */
  async write(source: Readable, signal: AbortSignal): Promise<void> {
    const halt = AbortSignal.any([signal, this.failed.signal]);
    // A part that failed, or the signal, ends the reading at once (a pending read rejects).
    const stopReading = () => source.destroy(halt.reason instanceof Error ? halt.reason : new Error(String(halt.reason)));
    if (halt.aborted) stopReading();
    else halt.addEventListener('abort', stopReading, { once: true });
    let part: Buffer | undefined;
    let filled = 0;
    let crc = 0;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        for (let offset = 0; offset < chunk.length; ) {
          if (part && filled === part.length) {
            // A full part with more bytes after it: on its way once there is room in the queue.
            await this.send(part, filled, crc);
            part = undefined;
            filled = 0;
            crc = 0;
          }
          part ??= await this.buffers.take(halt);
          const n = chunk.copy(part, filled, offset);
          crc = crc32(part.subarray(filled, filled + n), crc);
          filled += n;
          offset += n;
        }
      }
      if (halt.aborted) throw halt.reason;
      if (this.partCount === 0) {
        const body = part ? part.subarray(0, filled) : Buffer.alloc(0);
        await this.creating(this.putObject(body, crc));
      } else {
        if (filled > 0) await this.send(part as Buffer, filled, crc);
        part = undefined;
        await this.drain();
        if (this.failure) throw this.failure.error;
        await this.creating(this.complete());
      }
      if (signal.aborted) throw signal.reason;
    } catch (err) {
      await this.drain();
      throw signal.aborted ? signal.reason : (this.failure?.error ?? err);
    } finally {
      halt.removeEventListener('abort', stopReading);
      if (part) this.buffers.give(part);
    }
  }

  /** Sends a creating request (the single PUT, the completion) and notes whether it may have stored the object. */
  private async creating(request: Promise<unknown>): Promise<void> {
    try {
      await request;
      this.mayHaveCreated = true;
    } catch (err) {
      // Only S3 refusing the first and only attempt (4xx) says that nothing was stored: a refusal
      // of a retry (NoSuchUpload for a completion) may follow an attempt that landed unanswered.
      const { httpStatusCode: status, attempts = 1 } = (err as { $metadata?: { httpStatusCode?: number; attempts?: number } }).$metadata ?? {};
      if (!(status !== undefined && status >= 400 && status < 500 && attempts <= 1)) this.mayHaveCreated = true;
      throw err;
    }
  }

  private putObject(body: Buffer, crc: number): Promise<unknown> {
    const { Bucket, Key, Tagging } = this.target;
    return this.s3.send(
      new PutObjectCommand({
        Bucket,
        Key,
        Tagging,
        Body: body,
        ContentLength: body.length,
        ChecksumAlgorithm: 'CRC32',
        ChecksumCRC32: crc32Base64(crc),
        ...this.target.attributes(),
      }),
    );
  }

  private async complete(): Promise<unknown> {
    const { Bucket, Key } = this.target;
    const Parts = [...this.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    return this.s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: await this.created, MultipartUpload: { Parts } }));
  }

  /**
   * Starts the upload of one part once fewer than `queueSize` are in flight (the multipart upload
   * is created with the first one). The buffer goes back to the pool when the part's request has
   * settled. Throws the first failure instead when a part already failed.
   */
  private async send(buffer: Buffer, length: number, crc: number): Promise<void> {
    while (this.inFlight.size >= this.queueSize && !this.failure) await Promise.race(this.inFlight);
    if (this.failure) {
      this.buffers.give(buffer);
      throw this.failure.error;
    }
    const PartNumber = (this.partCount += 1);
    if (PartNumber > MAX_PARTS) {
      this.buffers.give(buffer);
      throw new RangeError(`a multipart upload has at most ${MAX_PARTS} parts`);
    }
    const { Bucket, Key } = this.target;
    this.created ??= this.s3
      .send(new CreateMultipartUploadCommand({ Bucket, Key, Tagging: this.target.Tagging, ChecksumAlgorithm: 'CRC32', ...this.target.attributes() }))
      .then((out) => (this.uploadId = out.UploadId as string));
    const ChecksumCRC32 = crc32Base64(crc);
    const sent: Promise<void> = this.created
      .then((UploadId) =>
        this.s3.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId,
            PartNumber,
            Body: buffer.subarray(0, length),
            ContentLength: length,
            ChecksumAlgorithm: 'CRC32',
            ChecksumCRC32,
          }),
        ),
      )
      .then(
        (out) => void this.parts.push({ PartNumber, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32 ?? ChecksumCRC32 }),
        (error: unknown) => {
          this.failure ??= { error };
          this.failed.abort(error);
        },
      )
      .finally(() => {
        this.inFlight.delete(sent);
        this.buffers.give(buffer);
      });
    this.inFlight.add(sent);
  }

  /** Resolves once no part is in flight (parts never reject: a failure is kept in `failure`). */
  private async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }
}
