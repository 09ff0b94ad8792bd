import { createHash, randomUUID } from 'node:crypto';
import { type Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';

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

/** Printable ASCII and newlines: what a `.txt` file may hold. */
const TEXT_ALPHABET = Buffer.from(`${' abcdefghijklmnopqrstuvwxyz'.repeat(3)}ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?-()\n`, 'latin1');

/** SHA-256 of the files generated so far, by seed, size, chunk size, head and content: the same bytes every time. */
const digests = new Map<string, string>();

/**
 * A file of `size` bytes that is never held whole in memory: generated chunk by chunk, the same
 * bytes for the same `seed` and size, starting with `head` (e.g. the PNG signature). `content`
 * `text` makes every byte printable ASCII or a newline (a plain text file). The SHA-256 of the
 * bytes is computed while they are generated (the first time these bytes are generated only) and
 * is available once a pass has been consumed.
 */
export class GeneratedFile {
  private digest: string | undefined;

  constructor(
    readonly size: number,
    readonly seed: number,
    private readonly head: Buffer = PNG_SIGNATURE,
    private readonly chunkBytes = 256 * 1024,
    readonly content: 'binary' | 'text' = 'binary',
  ) {}

  /** One pass over the bytes; each chunk is a fresh buffer (a writer may still hold the previous one). */
  *chunks(): Generator<Buffer> {
    const id = `${this.seed}:${this.size}:${this.chunkBytes}:${this.head.toString('hex')}:${this.content}`;
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
      if (this.content === 'text') {
        for (let i = 0; i < n; i += 1) chunk[i] = TEXT_ALPHABET[(chunk[i] as number) % TEXT_ALPHABET.length] as number;
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
  /** The response headers (empty without a response). */
  headers: IncomingHttpHeaders;
  /** From sending the request to the end of the response, in ms. */
  ms: number;
  /** Body bytes handed to the socket before the request ended or was answered. */
  bytesSent: number;
  error?: string;
}

export interface PostStreamOptions {
  headers: Record<string, string>;
  body: StreamedBody;
  agent: Agent;
  /** The request fails when no byte moves either way for this long. */
  timeoutMs: number;
  /** Send without Content-Length (chunked transfer encoding), as a client that does not know the size. */
  chunked?: boolean;
  /** Pace the body at this rate (a slow client), in bytes per second; unpaced when absent. */
  bytesPerSecond?: number;
  /** Aborting it disconnects mid-request (a client that goes away). */
  signal?: AbortSignal;
  /** Disconnect once this many body bytes were handed to the socket (a client that goes away mid-upload). */
  disconnectAfterBytes?: number;
}

/**
 * Splits chunks into slices of at most a tenth of a second's worth and hands them out at
 * `bytesPerSecond`. Before each slice the client reads what it has received, as a browser's network
 * stack does while it uploads: after its own event loop stalled (a busy machine), timers run before
 * sockets are read, and a slice sent first could meet the reset of a server that answered and
 * closed meanwhile, losing the answer that was already there to read.
 */
async function* paced(chunks: Iterable<Buffer>, bytesPerSecond: number): AsyncGenerator<Buffer> {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
  const started = performance.now();
  let sent = 0;
  for (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length; offset += slice) {
      const piece = chunk.subarray(offset, offset + slice);
      const due = started + (sent * 1000) / bytesPerSecond;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      // One pass of the I/O phase: an answer that arrived is read (and stops the body) first.
      await new Promise((resolve) => setImmediate(resolve));
      sent += piece.length;
      yield piece;
    }
  }
}

/**
 * POSTs a streamed body through `node:http` (back-pressure respected: chunks are produced only as
 * fast as the socket takes them), with its Content-Length unless `chunked`. Never rejects: a
 * transport failure is `status: 0` with the error. A server that answers before the body is
 * complete (e.g. 413) is reported with its answer, and the rest of the body is not sent.
 */
export function postStream(url: string, opts: PostStreamOptions): Promise<StreamedResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let bytesSent = 0;
    let bodyDone = false;
    const finish = (r: Omit<StreamedResponse, 'ms' | 'bytesSent'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...r, ms: performance.now() - started, bytesSent });
    };
    const headers: Record<string, string> = { ...opts.headers, 'content-type': opts.body.contentType };
    if (!opts.chunked) headers['content-length'] = String(opts.body.contentLength);
    const req = httpRequest(url, { method: 'POST', agent: opts.agent, headers, ...(opts.signal ? { signal: opts.signal } : {}) });
    req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no progress for ${opts.timeoutMs} ms`)));
    const chunks = opts.body.chunks();
    const source = Readable.from(opts.bytesPerSecond ? paced(chunks, opts.bytesPerSecond) : chunks, { objectMode: false, highWaterMark: 1024 * 1024 });
    source.on('data', (chunk: Buffer) => {
      bytesSent += chunk.length;
      if (opts.disconnectAfterBytes !== undefined && bytesSent >= opts.disconnectAfterBytes) req.destroy(new Error('the client went away'));
    });
    source.on('end', () => (bodyDone = true));
    source.on('error', (err) => req.destroy(err));
    source.pipe(req);
    req.on('response', (res) => {
      // An answer before the whole body went out: stop sending (the connection is not reused).
      if (!bodyDone) {
        source.unpipe(req);
        source.destroy();
      }
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        finish({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), headers: res.headers });
        if (!bodyDone) req.destroy();
      });
      res.on('error', (err) => finish({ status: 0, body: '', headers: {}, error: err.message }));
    });
    req.on('error', (err) => {
      source.destroy();
      finish({ status: 0, body: '', headers: {}, error: err.message });
    });
  });
}
