import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { UnsupportedFileType } from '../errors';
import { type ContentCheck, ContentRefused } from './content-check';
import { type FileType, SNIFF_BYTES } from './file-types';

export { SNIFF_BYTES };

/** What the inspector found once the whole stream went through it. */
export interface Verdict {
  /** Bytes seen. */
  size: number;
  /** SHA-256 of those bytes, lower-case hex (FU-15). */
  sha256: string;
  /** The content type to record (with its charset for text). */
  contentType: string;
}

export interface InspectorOptions {
  /** The stored file name (for messages). */
  name: string;
  /** The type the name's extension promises. */
  type: FileType;
  /** Most bytes the stream may carry. */
  limit: number;
  /** The error for a stream that goes past `limit` (FU-01, FU-03). */
  overLimit: (size: number) => Error;
}

/** Bytes the inspector buffers on each side, per upload. */
const INSPECTOR_HIGH_WATER_MARK = 256 * 1024;

/**
 * The one pass over a file's bytes, as a stream stage between the file's source and its
 * destination (FU-01, FU-05, FU-15): counts the bytes and refuses the first one past the limit,
 * hashes them with SHA-256, holds back the first SNIFF_BYTES until the type check accepts them
 * (so nothing of a file of the wrong type reaches the destination), lets the type follow the rest
 * of the stream, keeps a bounded tail when the type needs the end of the file (a zip's
 * directory), and gives the final verdict when the stream ends: an error instead of the end of
 * the stream, so a refused file never completes at the destination.
 *
 * Chunks pass through unchanged (no copies); the first bytes are joined once for the check.
 * `verdict` is set once the stream has ended successfully.
 */
export class Inspector extends Transform {
  verdict?: Verdict;
  private readonly hash: Hash = createHash('sha256');
  // Not named `size` or `length`: an SDK reading this stream as a body would take them for its length.
  private seen = 0;
  private head: Buffer[] = [];
  private headBytes = 0;
  private check?: ContentCheck;
  private tail: Buffer[] = [];
  private tailBytes = 0;

  /** The content type as far as the bytes seen so far tell; undefined until the first bytes were accepted. */
  get contentType(): string | undefined {
    return this.verdict?.contentType ?? this.check?.current();
  }

  constructor(private readonly opts: InspectorOptions) {
    // 256 KiB each way (Node's default is 16 KiB, 64 KiB for files): enough to keep socket reads
    // flowing while a part is handed to the writer, small enough that 32 uploads at once hold 16 MiB
    // here rather than 64 (bench/README.md, "What the missed goals cost").
    super({ readableHighWaterMark: INSPECTOR_HIGH_WATER_MARK, writableHighWaterMark: INSPECTOR_HIGH_WATER_MARK });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.opts.limit) return done(this.opts.overLimit(this.seen));
    this.hash.update(chunk);
    try {
      if (!this.check) {
        this.head.push(chunk);
        this.headBytes += chunk.length;
        if (this.headBytes >= SNIFF_BYTES) this.begin(false);
      } else {
        this.check.update(chunk);
        this.keepTail(chunk);
        this.push(chunk);
      }
    } catch (err) {
      return done(this.refusal(err));
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    try {
      if (!this.check) this.begin(true);
      const contentType = (this.check as ContentCheck).finish(this.seen, this.tailBuffer());
      this.verdict = { size: this.seen, sha256: this.hash.digest('hex'), contentType };
    } catch (err) {
      return done(this.refusal(err));
    }
    done();
  }

  /** The first verdict, on the first bytes; they go downstream only once accepted. */
  private begin(complete: boolean): void {
    const head = this.head.length === 1 ? (this.head[0] as Buffer) : Buffer.concat(this.head, this.headBytes);
    this.check = this.opts.type.begin(head, complete);
    for (const chunk of this.head) {
      this.keepTail(chunk);
      this.push(chunk);
    }
    this.head = [];
  }

  /** Keeps references to the last chunks covering the check's `tailBytes` (nothing when it needs none). */
  private keepTail(chunk: Buffer): void {
    const want = this.check?.tailBytes ?? 0;
    if (want === 0) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tail.length > 1 && this.tailBytes - (this.tail[0] as Buffer).length >= want) {
      this.tailBytes -= (this.tail.shift() as Buffer).length;
    }
  }

  private tailBuffer(): Buffer {
    const want = this.check?.tailBytes ?? 0;
    if (want === 0) return Buffer.alloc(0);
    const joined = Buffer.concat(this.tail, this.tailBytes);
    return joined.subarray(Math.max(0, joined.length - want));
  }

  private refusal(err: unknown): Error {
    if (err instanceof ContentRefused) return new UnsupportedFileType(`"${this.opts.name}" ${err.message}`, { cause: err });
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * The type check of a file that is already stored whole (a resumable upload at `/complete`), from
 * its ends only: the first SNIFF_BYTES (`head`, all of it for a smaller file) and, for a type
 * whose check needs the end of the file (a zip's directory), its last `tailBytes` (`readTail`,
 * called only then). The same checks, with the same messages, as the inspector of a streamed
 * upload; the middle of a larger file is not read (its bytes reached S3 verified part by part).
 * Returns the content type to record; a refused file throws 415 UNSUPPORTED_FILE_TYPE.
 */
export async function inspectEnds(opts: {
  name: string;
  type: FileType;
  size: number;
  head: Buffer;
  readTail: (bytes: number) => Promise<Buffer>;
}): Promise<string> {
  const refusal = (err: unknown) =>
    err instanceof ContentRefused ? new UnsupportedFileType(`"${opts.name}" ${err.message}`, { cause: err }) : err;
  // A text's middle is not read: its verdict (and charset) is the one its first bytes give.
  try {
    const whole = opts.head.length >= opts.size;
    const check = opts.type.begin(opts.head, whole);
    if (whole) return check.finish(opts.size, opts.head.subarray(Math.max(0, opts.head.length - check.tailBytes)));
    // A check that needs the end gets it; one that follows every byte (text) has its verdict from the first bytes.
    return check.tailBytes > 0 ? check.finish(opts.size, await opts.readTail(check.tailBytes)) : check.current();
  } catch (err) {
    throw refusal(err);
  }
}
