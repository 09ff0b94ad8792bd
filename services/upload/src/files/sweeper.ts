import type { UploadConfig } from '../config';
import { FILE_KEY_PREFIX, type FileRepository, STAGING_KEY_PREFIX } from '@scs/common/files';
import type { ObjectStore } from '../storage/object-store';
import type { Logger } from '@scs/common';

/**
 * Heals what a crash or an abandoned direct upload can leave (FU-14): pending or verifying
 * records past their time (removed with their reservation, in one transaction, then their
 * objects, and a resumable upload's multipart upload), deletes that stopped half-way (finished), file objects (`users/`) that no active record points at, and staged uploads
 * (`incoming/`) that no pending upload is waiting for, both once older than the pending window.
 */
export class Sweeper {
  constructor(
    private readonly store: ObjectStore,
    private readonly files: FileRepository,
    private readonly config: UploadConfig,
    private readonly log: Pick<Logger, 'info'>,
  ) {}

  /**
   * One pass over the whole store, or over one account's files (`userId`). `now` is the time
   * the pass takes as current (milliseconds).
   */
  async sweep(opts: { now?: number; userId?: string } = {}): Promise<{ expiredPending: number; orphanObjects: number }> {
    const now = opts.now ?? Date.now();
    const nowSeconds = Math.floor(now / 1000);
    let expiredPending = 0;
    let orphanObjects = 0;
    for (const record of await this.files.expiredPending(nowSeconds, opts.userId)) {
      if (!(await this.files.discard(record, { expiredBefore: nowSeconds }))) continue;
      if (record.uploadId) {
        // A resumable upload: its multipart upload, and an object a /complete that died may have completed.
        await this.store.abortUpload(record.key, record.uploadId);
        await this.store.deleteFileVersions(record.key);
      } else {
        await this.store.deleteStaged(record.userId, record.fileId);
        // A /complete that died after promoting leaves the file object too.
        await this.store.deleteFile(record.key, record.sensitive);
      }
      expiredPending += 1;
    }
    // A delete whose request died after the record became `deleting`: finished (object, then record).
    for (const record of await this.files.expiredDeletes(nowSeconds, opts.userId)) {
      await this.store.deleteFile(record.key, record.sensitive);
      if (await this.files.finishDelete(record)) expiredPending += 1;
    }

    const cutoff = now - this.config.PENDING_UPLOAD_SECONDS * 1000;
    const sources = [
      // A resumable upload's object exists from its completion on, while its record still verifies.
      { bucket: 'primary', prefix: FILE_KEY_PREFIX, keep: ['active', 'verifying'] },
      { bucket: 'sensitive', prefix: FILE_KEY_PREFIX, keep: ['active'] },
      { bucket: 'primary', prefix: STAGING_KEY_PREFIX, keep: ['pending', 'verifying'] },
    ] as const;
    for (const { bucket, prefix, keep } of sources) {
      for await (const found of this.store.list(bucket, opts.userId ? `${prefix}${opts.userId}/` : prefix)) {
        const [userId, fileId] = found.key.slice(prefix.length).split('/');
        if (!userId || !fileId || (found.lastModified?.getTime() ?? now) > cutoff) continue;
        const record = await this.files.get(userId, fileId);
        if (record && (keep as readonly string[]).includes(record.status)) continue;
        if (prefix === STAGING_KEY_PREFIX) await this.store.deleteStaged(userId, fileId);
        else await this.store.deleteListed(found);
        orphanObjects += 1;
      }
    }
    if (expiredPending || orphanObjects) this.log.info({ expiredPending, orphanObjects }, 'sweep removed leftovers');
    return { expiredPending, orphanObjects };
  }
}
