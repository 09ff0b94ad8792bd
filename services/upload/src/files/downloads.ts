import { FileNotFound } from '../errors';
import type { FileRecord, FileRepository, UsageRepository } from '@scs/common/files';
import type { ObjectStore } from '../storage/object-store';

/** How long a delete may stay half-done (its request died) before the sweep finishes it, in seconds. */
export const DELETE_LEASE_SECONDS = 300;

/**
 * Files as their owner sees them: the listing, one file's metadata, short-lived download links,
 * and deletion. Another user's file id is simply not found (DL-03).
 */
export class Downloads {
  constructor(
    private readonly store: ObjectStore,
    private readonly files: FileRepository,
    private readonly usage: UsageRepository,
  ) {}

  /** Newest first; `nextCursor` only when more files follow. */
  async list(userId: string, limit: number, cursor?: string): Promise<{ items: FileRecord[]; nextCursor: string | null }> {
    const page = await this.files.list(userId, limit, cursor);
    return { items: page.items, nextCursor: page.next ?? null };
  }

  /** An active file of this user. */
  async get(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.files.get(userId, fileId);
    if (!record || record.status !== 'active') throw new FileNotFound();
    return record;
  }

  /** The bytes the user's files take (uploads under way not included). */
  async usedBytes(userId: string): Promise<number> {
    return (await this.usage.usage(userId)).usedBytes;
  }

  /** A presigned GET (DL-05) that downloads as an attachment under the stored name and type (DL-01). */
  async downloadUrl(userId: string, fileId: string): Promise<string> {
    const record = await this.get(userId, fileId);
    const bucket = await this.store.locate(record.key, record.sensitive);
    if (!bucket) throw new FileNotFound();
    return this.store.downloadUrl(bucket, record.key, record.name, record.contentType);
  }

  /**
   * Deletes a file in three steps, serialised with a restore of the same file on its record: the
   * record becomes `deleting` (no longer listed or downloadable; a restore waits for the delete or
   * is refused), the object goes (every version, in both buckets), then the record goes and its
   * bytes are freed (one transaction; parallel deletes free them once). So the file ends deleted
   * whole or, if a restore comes after, restored whole: never a counted record without its object.
   * A delete that stops half-way is finished by the owner's next DELETE or by the sweep.
   */
  async delete(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.files.get(userId, fileId);
    if (!record || (record.status !== 'active' && record.status !== 'deleting')) throw new FileNotFound();
    if (record.status === 'active' && !(await this.files.beginDelete(record, Math.floor(Date.now() / 1000) + DELETE_LEASE_SECONDS))) {
      throw new FileNotFound();
    }
    await this.store.deleteFile(record.key, record.sensitive);
    await this.files.finishDelete(record);
    return record;
  }
}
