import type { UploadConfig } from '../config';
import { FileCountExceeded, FileTooLarge, QuotaExceeded } from '../errors';
import type { FileRepository } from '@scs/common/files';

/** Bytes in words a person reads, in IEC units: 104857600 -> "100 MiB", 1536 -> "1.5 KiB". */
export function humanBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

interface Logger {
  warn(obj: object, msg: string): void;
}

/**
 * The size limit and the per-user quota (FU-01, FU-03): bytes are reserved before an upload
 * reads its body and settled (or released) when it ends, so parallel uploads never overshoot.
 */
export class Quota {
  constructor(
    private readonly files: FileRepository,
    private readonly config: UploadConfig,
    private readonly log: Logger,
  ) {}

  get maxBytes(): number {
    return this.config.MAX_UPLOAD_BYTES;
  }

  tooLarge(cause?: unknown): Error {
    return new FileTooLarge(humanBytes(this.config.MAX_UPLOAD_BYTES), ...(cause ? [{ cause }] : []));
  }

  exceeded(): Error {
    return new QuotaExceeded(humanBytes(this.config.QUOTA_BYTES));
  }

  /**
   * Reserves `bytes` (at most the size limit) of the user's quota and one file of their file count
   * (`QUOTA_FILES`: every upload under way and every pending direct upload holds one, even of zero
   * bytes); refuses at once what cannot fit the size limit (`declared` above it: 413
   * FILE_TOO_LARGE), the quota (413 QUOTA_EXCEEDED) or the file count (413 FILE_COUNT_EXCEEDED).
   * Returns the bytes reserved.
   */
  async reserve(userId: string, bytes: number, declared = bytes): Promise<number> {
    if (declared > this.config.MAX_UPLOAD_BYTES) throw this.tooLarge();
    const reserved = Math.min(bytes, this.config.MAX_UPLOAD_BYTES);
    if (!(await this.files.reserve(userId, reserved, this.config.QUOTA_BYTES, this.config.QUOTA_FILES))) {
      const { committedFiles } = await this.files.fileCounts(userId);
      throw committedFiles >= this.config.QUOTA_FILES ? new FileCountExceeded(String(this.config.QUOTA_FILES)) : this.exceeded();
    }
    return reserved;
  }

  /**
   * Gives a reservation back (its bytes, possibly none, and its file); a failure is logged, not
   * thrown (the caller is already failing).
   */
  async release(userId: string, reserved: number): Promise<void> {
    await this.files.release(userId, reserved).catch((err: unknown) => this.log.warn({ err, userId, reserved }, 'releasing a quota reservation failed'));
  }
}
