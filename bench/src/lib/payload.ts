import { createHash, randomUUID } from 'node:crypto';
import { type Agent, request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** The 8-byte PNG signature: enough for a `.png` upload to pass the content check. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const BLOCK_BYTES = 1024 * 1024;
let sharedBlock: Buffer | undefined;

/** 1 MiB of pseudo-random bytes (xorshift32, fixed seed), built once: the raw material of every payload. */
function block(): Buffer {
  if (!sharedBlock) {
    sharedBlock = Buffer.allocUnsafe(BLOCK_BYTES);
    let x = 0x9e3779b9;
    for (let i = 0; i < BLOCK_BYTES; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      sharedBlock.writeUInt32LE(x >>> 0, i);
    }
  }
  return sharedBlock;
}

/** SHA-256 of the files generated so far, by seed, size and chunk size: the same bytes every time. */
const digests = new Map<string, string>();

/**
 * A file of `size` bytes that is never held whole in memory: generated chunk by chunk, the same
 * bytes for the same `seed` and size, starting with `head` (e.g. the PNG signature). The SHA-256 of
 * the bytes is computed while they are generated (the first time these bytes are generated only)
 * and is available once a pass has been consumed.
 */
export class GeneratedFile {
  private digest: string | undefined;

  constructor(
    readonly size: number,
    readonly seed: number,
    private readonly head: Buffer = PNG_SIGNATURE,
    private readonly chunkBytes = 256 * 1024,
  ) {}

  /** One pass over the bytes; each chunk is a fresh buffer (a writer may still hold the previous one). */
  *chunks(): Generator<Buffer> {
    const id = `${this.seed}:${this.size}:${this.chunkBytes}:${this.head.toString('hex')}`;
    const known = digests.get(id);
    const hash = known === undefined ? createHash('sha256') : undefined;
    const base = block();
    this.digest = undefined;
    for (let offset = 0, index = 0; offset < this.size; offset += this.chunkBytes, index += 1) {
      const n = Math.min(this.chunkBytes, this.size - offset);
      const chunk = Buffer.allocUnsafe(n);
      // A different window of the block per chunk and seed, stamped with the seed and chunk index,
      // so no two chunks (or files) are byte-identical.
      const start = ((index * 7919 + this.seed * 104_729) * 64) % (BLOCK_BYTES - n + 1);
      base.copy(chunk, 0, start, start + n);
      if (n >= 8) {
        chunk.writeUInt32BE(this.seed >>> 0, 0);
        chunk.writeUInt32BE(index >>> 0, 4);
      }
      if (offset === 0) this.head.copy(chunk, 0, 0, Math.min(this.head.length, n));
      hash?.update(chunk);
      yield chunk;
    }
    this.digest = known ?? (hash as ReturnType<typeof createHash>).digest('hex');
    digests.set(id, this.digest);
  }

  /** SHA-256 (hex) of the bytes of the last complete pass. */
  sha256(): string {
    if (this.digest === undefined) throw new Error('the file has not been generated completely yet');
    return this.digest;
  }
}

/** A request body, streamed, with its exact length known up front. */
export interface StreamedBody {
  contentType: string;
  contentLength: number;
  chunks(): Generator<Buffer>;
}

/** A multipart/form-data body with one file part. */
export function multipartFile(field: string, filename: string, partContentType: string, file: GeneratedFile): StreamedBody {
  const boundary = `----scs-bench-${randomUUID()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${partContentType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength: head.length + file.size + tail.length,
    *chunks() {
      yield head;
      yield* file.chunks();
      yield tail;
    },
  };
}

/** The file itself as the body (application/octet-stream). */
export function rawFile(file: GeneratedFile): StreamedBody {
  return { contentType: 'application/octet-stream', contentLength: file.size, chunks: () => file.chunks() };
}

export interface StreamedResponse {
  /** HTTP status, or 0 when no response arrived (connection error, timeout). */
  status: number;
  body: string;
  /** From sending the request to the end of the response, in ms. */
  ms: number;
  error?: string;
}

/**
 * POSTs a streamed body with a known Content-Length through `node:http` (back-pressure respected:
 * chunks are produced only as fast as the socket takes them). Never rejects: a transport failure
 * is `status: 0` with the error. A server that answers before the body is complete (e.g. 413) is
 * reported with its answer.
 */
export function postStream(
  url: string,
  opts: { headers: Record<string, string>; body: StreamedBody; agent: Agent; timeoutMs: number },
): Promise<StreamedResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: Omit<StreamedResponse, 'ms'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...r, ms: performance.now() - started });
    };
    const req = httpRequest(url, {
      method: 'POST',
      agent: opts.agent,
      headers: { ...opts.headers, 'content-type': opts.body.contentType, 'content-length': String(opts.body.contentLength) },
    });
    req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no progress for ${opts.timeoutMs} ms`)));
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', (err) => finish({ status: 0, body: '', error: err.message }));
    });
    req.on('error', (err) => finish({ status: 0, body: '', error: err.message }));
    pipeline(Readable.from(opts.body.chunks(), { objectMode: false, highWaterMark: 1024 * 1024 }), req).catch(() => {
      // An early answer or a transport error ends the upload; the response (or 'error') reports it.
    });
  });
}
