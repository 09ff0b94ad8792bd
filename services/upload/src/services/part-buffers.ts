/**
 * The buffers multipart uploads assemble their parts in, reused from one part (and one upload) to
 * the next. `reserved` buffers are allocated and written once when the service starts, so the
 * memory an upload needs is resident from the start and does not grow with the size of the file;
 * an upload that finds none idle (several uploads at once) gets a fresh one, which is dropped
 * after use. Reusing buffers spares the allocation, zeroing and page faults of 8 MiB per part, and
 * the garbage collections that large short-lived buffers set off.
 *
 * A reused buffer still holds an earlier part's bytes past what the current part wrote: callers
 * only ever read the bytes they wrote themselves (`subarray(0, filled)`).
 */
export class PartBuffers {
  private readonly idle: Buffer[] = [];

  constructor(
    /** Bytes of each buffer (the part size). */
    readonly partBytes: number,
    /** Buffers kept for reuse (and reserved at start). */
    readonly reserved: number,
  ) {
    for (let i = 0; i < reserved; i += 1) this.idle.push(Buffer.allocUnsafeSlow(partBytes).fill(0));
  }

  /** A buffer to fill: an idle one, or a fresh one when none is idle. */
  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.partBytes);
  }

  /** Hands a buffer back once nothing reads it any more (its part was sent, or the upload failed). */
  give(buffer: Buffer): void {
    if (this.idle.length < this.reserved && buffer.length === this.partBytes) this.idle.push(buffer);
  }

  /** Buffers idle now (for tests and metrics). */
  get idleCount(): number {
    return this.idle.length;
  }
}
