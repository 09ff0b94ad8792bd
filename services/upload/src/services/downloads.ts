import { FileNotFound } from '../errors';
import type { FileRecord, FileRepository } from '@scs/common/files';
import type { ObjectStore } from './object-store';

/**
 * Files as their owner sees them: the listing, one file's metadata, short-lived download links,
 * and deletion. Another user's file id is simply not found (DL-03).
 */
export class Downloads {
  constructor(
    private readonly store: ObjectStore,
    private readonly files: FileRepository,
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

  async usedBytes(userId: string): Promise<number> {
    return (await this.files.usage(userId)).usedBytes;
  }

  /** A presigned GET (DL-05) that downloads as an attachment under the stored name and type (DL-01). */
  async downloadUrl(userId: string, fileId: string): Promise<string> {
    const record = await this.get(userId, fileId);
    const bucket = await this.store.locate(record.key, record.sensitive);
    if (!bucket) throw new FileNotFound();
    return this.store.downloadUrl(bucket, record.key, record.name, record.contentType);
  }

  /**
   * Deletes a file: the record and its usage first (one transaction; parallel deletes free the
   * bytes once), then the object. An object left behind by a failure here has no record and is
   * removed by the sweep.
   */
  async delete(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.get(userId, fileId);
    if (!(await this.files.deleteActive(record))) throw new FileNotFound();
    await this.store.deleteFile(record.key, record.sensitive);
    return record;
  }
}
