import type { UploadConfig } from '../config';
import { FileCountExceeded, FileTooLarge, QuotaExceeded } from '../errors';
import type { FileRecord, FileRepository, Reservation, UsageRepository } from '@scs/common/files';
import type { Logger } from '@scs/common';

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

/** A streamed upload's reservation, renewed in the background until `stop` (its settlement or release). */
export interface HeldReservation extends Reservation {
  stop(): void;
}

/**
 * The size limit and the per-user quota (FU-01, FU-03): bytes are reserved before an upload
 * reads its body and settled (or released) when it ends, so parallel uploads never overshoot.
 * The limits are the upload service's settings; the reservations and counters are
 * `UsageRepository`'s (a pending direct upload's record and its reservation are one transaction:
 * `FileRepository.createPending`).
 */
export class Quota {
  constructor(
    private readonly usage: UsageRepository,
    private readonly files: FileRepository,
    private readonly config: UploadConfig,
    private readonly log: Pick<Logger, 'warn'>,
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
   * bytes) for a streamed upload; refuses at once what cannot fit the size limit (`declared` above
   * it: 413 FILE_TOO_LARGE), the quota (413 QUOTA_EXCEEDED) or the file count (413
   * FILE_COUNT_EXCEEDED). The reservation (its bytes and its file) is held
   * for RESERVATION_LEASE_SECONDS and renewed every third of that while the upload runs, so one
   * whose process died is released by the next usage reconciliation; `stop` ends the renewals.
   */
  async reserve(userId: string, bytes: number, declared = bytes): Promise<HeldReservation> {
    if (declared > this.config.MAX_UPLOAD_BYTES) throw this.tooLarge();
    const lease = this.config.RESERVATION_LEASE_SECONDS;
    const until = () => Math.floor(Date.now() / 1000) + lease;
    const reserved = Math.min(bytes, this.config.MAX_UPLOAD_BYTES);
    const reservation = await this.usage.reserve(userId, reserved, this.config.QUOTA_BYTES, until(), this.config.QUOTA_FILES);
    if (!reservation) throw await this.refusal(userId);
    const renew = setInterval(() => {
      this.usage.renew(reservation, until()).then(
        (held) => {
          if (!held) clearInterval(renew);
        },
        (err: unknown) => this.log.warn({ err, userId, reservation: reservation.id }, 'renewing a quota reservation failed'),
      );
    }, (lease * 1000) / 3);
    renew.unref();
    return { ...reservation, stop: () => clearInterval(renew) };
  }

  /**
   * Reserves a direct upload's size and one file of the file count and creates its pending record
   * under `#pending#<id>` (`record.size` bytes, in one transaction: the record holds the
   * reservation until `/complete` or the sweep); refuses like `reserve`, with `maxBytes` as the
   * size limit (MAX_UPLOAD_BYTES unless given: resumable uploads have MAX_DIRECT_UPLOAD_BYTES).
   */
  async reservePending(record: FileRecord, maxBytes = this.config.MAX_UPLOAD_BYTES): Promise<void> {
    if (record.size > maxBytes) throw new FileTooLarge(humanBytes(maxBytes));
    if (!(await this.files.createPending(record, this.config.QUOTA_BYTES, this.config.QUOTA_FILES))) throw await this.refusal(record.userId);
  }

  /** Why a reservation was refused: 413 FILE_COUNT_EXCEEDED when the file count is full, else 413 QUOTA_EXCEEDED. */
  private async refusal(userId: string): Promise<Error> {
    const { committedFiles } = await this.usage.fileCounts(userId);
    return committedFiles >= this.config.QUOTA_FILES ? new FileCountExceeded(String(this.config.QUOTA_FILES)) : this.exceeded();
  }

  /** Gives a reservation back (its bytes, possibly none, and its file; exactly once); a failure is logged, not thrown (the caller is already failing). */
  async release(held: HeldReservation): Promise<void> {
    held.stop();
    const { userId, id, bytes } = held;
    await this.usage.release({ userId, id, bytes }).catch((err: unknown) => this.log.warn({ err, userId, reserved: bytes }, 'releasing a quota reservation failed'));
  }
}
