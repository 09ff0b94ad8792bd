import {
  DeleteObjectCommand,
  type HeadObjectCommandOutput,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isObjectGone as isGone } from '@scs/common/aws';
import { type Encryption, headWithChecksum, isSha256Hex as isSha256, type ObjectRef, type ServerSideCopier } from '@scs/common/s3-copy';
import { paginateObjectVersions } from '@scs/common/s3-versions';
import { FILE_KEY_PREFIX, type FileRecord, type FileRepository, fileTags, parseFileKey, taggingQuery } from '@scs/common/files';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupConfig } from '../config';

/** Backups of deleted files wait here (their LastModified is the time of the delete) until retention ends. */
export const DELETED_PREFIX = 'deleted/';

/** What a backup copy carries to rebuild the file's record (name: in Content-Disposition; size: the object's). */
const META = {
  owner: 'owner',
  fileId: 'file-id',
  sha256: 'sha256',
  sensitive: 'sensitive',
  createdAt: 'created-at',
  sourceBucket: 'source-bucket',
  sourceVersion: 'source-version-id',
} as const;

export type BackupOutcome =
  /** A verified copy was made. */
  | 'copied'
  /** The backup already holds this version. */
  | 'in-sync'
  /** The version no longer exists (moved or deleted since): a later event or the reconcile covers it. */
  | 'gone'
  /** Not a file key: nothing to back up. */
  | 'not-a-file';

export type DeleteOutcome =
  /** A user's delete: the backup moved under deleted/ and is kept for the retention period. */
  | 'retired'
  /** Not a user's delete (a move to the vault, a newer version): the backup stays as it is. */
  | 'kept'
  /** No backup to retire. */
  | 'none';

/** The file's record is not complete yet (the upload service writes it a moment after the object). */
export class RecordNotReady extends Error {
  constructor(key: string) {
    super(`the record of ${key} is not complete yet`);
    this.name = 'RecordNotReady';
  }
}

/** The owner is deleting the file right now: a restore would race the delete (retry once it is done). */
export class DeleteInProgress extends Error {
  constructor() {
    super("The file's owner is deleting it right now: nothing was restored; try again in a moment");
    this.name = 'DeleteInProgress';
  }
}

/** A file put back by a restore, as the admin API answers it. */
export interface RestoredFile {
  record: FileRecord;
  /** True when the object was copied back; false when the file was there already. */
  restoredObject: boolean;
}


/**
 * The backup bucket's content: one KMS-encrypted, verified server-side copy per file under the
 * file's own key, and copies of deleted files under `deleted/` for BACKUP_RETENTION_DAYS.
 * Backups of sensitive files are encrypted under the sensitive key (never the backup key), so the
 * backup key alone never opens a vault file. Every operation can be repeated safely.
 */
export class Backups {
  constructor(
    private readonly s3: S3Client,
    private readonly copier: ServerSideCopier,
    private readonly files: FileRepository,
    private readonly config: Pick<
      BackupConfig,
      'PRIMARY_BUCKET' | 'SENSITIVE_BUCKET' | 'BACKUP_BUCKET' | 'BACKUP_KMS_KEY_ID' | 'SENSITIVE_KMS_KEY_ID' | 'BACKUP_RETENTION_DAYS'
    >,
  ) {}

  /** The key a file's backup is under; sensitive files under the sensitive key. */
  encryptionFor(sensitive: boolean): Encryption {
    return { type: 'aws:kms', keyId: sensitive ? this.config.SENSITIVE_KMS_KEY_ID : this.config.BACKUP_KMS_KEY_ID };
  }

  /**
   * Backs up one version of a file object (the current one when no version is named): a verified
   * copy (SHA-256 computed by S3 during the copy, equal to the recorded one) carrying what the
   * record needs. Waits up to `recordWaitMs` for the upload service to finish the file, then
   * throws RecordNotReady.
   */
  async backup(source: ObjectRef, recordWaitMs = 0): Promise<BackupOutcome> {
    const file = parseFileKey(source.Key);
    if (!file || (source.Bucket !== this.config.PRIMARY_BUCKET && source.Bucket !== this.config.SENSITIVE_BUCKET)) return 'not-a-file';
    let head: HeadObjectCommandOutput;
    try {
      head = await headWithChecksum(this.s3, source);
    } catch (err) {
      if (isGone(err)) return 'gone';
      throw err;
    }
    const existing = await this.head({ Bucket: this.config.BACKUP_BUCKET, Key: source.Key });
    if (existing?.Metadata?.[META.sourceVersion] === head.VersionId && existing?.Metadata?.[META.sourceBucket] === source.Bucket) return 'in-sync';

    const record = await this.files.completeRecord(file.userId, file.fileId, { waitMs: recordWaitMs, firstPauseMs: 25, maxPauseMs: 400 });
    if (!record) throw new RecordNotReady(source.Key);
    const sensitive = record.sensitive || source.Bucket === this.config.SENSITIVE_BUCKET;
    await this.copier.copy({
      source: { ...source, VersionId: head.VersionId },
      sourceHead: head,
      destination: { Bucket: this.config.BACKUP_BUCKET, Key: source.Key },
      encryption: this.encryptionFor(sensitive),
      sha256: record.sha256,
      contentType: record.contentType,
      contentDisposition: head.ContentDisposition,
      metadata: {
        [META.owner]: record.userId,
        [META.fileId]: encodeURIComponent(record.fileId),
        [META.sha256]: record.sha256,
        [META.sensitive]: String(sensitive),
        [META.createdAt]: record.createdAt,
        [META.sourceBucket]: source.Bucket,
        [META.sourceVersion]: head.VersionId ?? 'null',
      },
      tagging: taggingQuery(fileTags({ sensitive, sha256: record.sha256 })),
    });
    return 'copied';
  }

  /**
   * After an object was deleted from a source bucket: if the file is gone (no record or one being
   * deleted, no object in either bucket) it was a user's delete, and its backup moves under deleted/ (kept for the
   * retention period). A move to the vault or a newer version leaves the backup alone.
   */
  async deleted(key: string): Promise<DeleteOutcome> {
    const file = parseFileKey(key);
    if (!file) return 'none';
    const record = await this.files.get(file.userId, file.fileId);
    // A record being deleted is a user's delete under way: its object is going now.
    if (record && record.status !== 'deleting') return 'kept';
    for (const Bucket of [this.config.PRIMARY_BUCKET, this.config.SENSITIVE_BUCKET]) {
      if (await this.head({ Bucket, Key: key })) return 'kept';
    }
    return this.retire(key);
  }

  /** Moves the backup of a deleted file to deleted/<key>; its LastModified starts the retention period. */
  async retire(key: string): Promise<DeleteOutcome> {
    const live = await this.head({ Bucket: this.config.BACKUP_BUCKET, Key: key });
    if (!live) return 'none';
    const sensitive = live.Metadata?.[META.sensitive] === 'true';
    const sha256 = live.Metadata?.[META.sha256];
    if (!isSha256(sha256)) throw new Error(`the backup of ${key} has no SHA-256`);
    await this.copier.copy({
      source: { Bucket: this.config.BACKUP_BUCKET, Key: key, VersionId: live.VersionId },
      sourceHead: live,
      destination: { Bucket: this.config.BACKUP_BUCKET, Key: `${DELETED_PREFIX}${key}` },
      encryption: this.encryptionFor(sensitive),
      sha256,
      contentType: live.ContentType,
      contentDisposition: live.ContentDisposition,
      metadata: { ...live.Metadata },
      tagging: taggingQuery(fileTags({ sensitive, sha256 })),
    });
    await this.removeAllVersions(key);
    return 'retired';
  }

  /** Deletes every version of deleted files' backups older than the retention period; returns how many files. */
  async expire(now = new Date()): Promise<number> {
    const cutoff = now.getTime() - this.config.BACKUP_RETENTION_DAYS * 86_400_000;
    let expired = 0;
    for await (const page of paginateListObjectsV2({ client: this.s3 }, { Bucket: this.config.BACKUP_BUCKET, Prefix: `${DELETED_PREFIX}${FILE_KEY_PREFIX}` })) {
      for (const o of page.Contents ?? []) {
        if (o.Key && o.LastModified && o.LastModified.getTime() < cutoff) {
          await this.removeAllVersions(o.Key);
          expired += 1;
        }
      }
    }
    return expired;
  }

  /**
   * Puts a file back from its backup: the object where it belongs (a sensitive file encrypted into
   * the vault under the sensitive key, never into the primary bucket; others into primary with
   * SSE-S3), verified against the recorded SHA-256, then the record with the original owner, name,
   * type, checksum and creation time, its size counted against the owner's quota. A file that is
   * there already is left as it is. Undefined when there is no backup of that file.
   *
   * Serialised with the owner's delete on the record: while a delete is under way (the record is
   * `deleting`) the restore waits up to `deleteWaitMs` for it to finish, then throws
   * DeleteInProgress; an object copied back for a file whose record then turns out not to be
   * active (a delete began, or finished, meanwhile) is removed again. So the file ends restored
   * whole (record, object, usage) or deleted whole, never a counted record without its object.
   */
  async restore(userId: string, fileId: string, deleteWaitMs = 0): Promise<RestoredFile | undefined> {
    const key = `${FILE_KEY_PREFIX}${userId}/${fileId}`;
    const live = await this.head({ Bucket: this.config.BACKUP_BUCKET, Key: key });
    const backupKey = live ? key : `${DELETED_PREFIX}${key}`;
    const backup = live ?? (await this.head({ Bucket: this.config.BACKUP_BUCKET, Key: backupKey }));
    const meta = backup?.Metadata ?? {};
    const sha256 = meta[META.sha256];
    if (!backup || meta[META.owner] !== userId || !isSha256(sha256)) return undefined;
    const sensitive = meta[META.sensitive] === 'true';
    const target = sensitive ? this.config.SENSITIVE_BUCKET : this.config.PRIMARY_BUCKET;

    const existing = await this.afterDelete(userId, fileId, deleteWaitMs);
    const present = await this.head({ Bucket: target, Key: key });
    let copied: string | undefined;
    let restoredObject = false;
    if (!present || present.ChecksumSHA256 !== Buffer.from(sha256, 'hex').toString('base64')) {
      const copy = await this.copier.copy({
        source: { Bucket: this.config.BACKUP_BUCKET, Key: backupKey, VersionId: backup.VersionId },
        sourceHead: backup,
        destination: { Bucket: target, Key: key },
        encryption: sensitive ? { type: 'aws:kms', keyId: this.config.SENSITIVE_KMS_KEY_ID } : { type: 'AES256' },
        sha256,
        contentType: backup.ContentType,
        contentDisposition: backup.ContentDisposition,
        metadata: { owner: userId, 'file-id': meta[META.fileId] ?? encodeURIComponent(fileId) },
        tagging: taggingQuery(fileTags({ sensitive, sha256 })),
      });
      copied = copy.versionId ?? 'null';
      restoredObject = true;
    }
    if (existing?.status === 'active') {
      const now = await this.files.get(userId, fileId);
      if (now?.status !== 'active') return this.lostToDelete(target, key, copied);
      if (sensitive && now.location !== 'sensitive' && now.sha256 === sha256) {
        await this.files.setLocation(userId, fileId, 'sensitive', sha256, new Date());
        return { record: { ...now, location: 'sensitive' }, restoredObject };
      }
      return { record: now, restoredObject };
    }

    const record: FileRecord = {
      userId,
      fileId,
      name: await nameFrom(backup.ContentDisposition, fileId),
      size: backup.ContentLength ?? 0,
      contentType: backup.ContentType ?? 'application/octet-stream',
      sha256,
      sensitive,
      status: 'active',
      key,
      createdAt: meta[META.createdAt] ?? new Date().toISOString(),
      ...(sensitive ? { location: 'sensitive' as const } : {}),
    };
    if (!(await this.files.restore(record))) {
      // Another restore wrote the record first (then the file is whole), or it is no file now.
      const now = await this.files.get(userId, fileId);
      if (now?.status !== 'active') return this.lostToDelete(target, key, copied);
      return { record: now, restoredObject };
    }
    return { record, restoredObject };
  }

  /**
   * The file's record once no delete of it is under way: waits (with backoff) up to `waitMs` while
   * it is `deleting`, then throws DeleteInProgress.
   */
  private async afterDelete(userId: string, fileId: string, waitMs: number): Promise<FileRecord | undefined> {
    const deadline = Date.now() + waitMs;
    for (let pause = 25; ; pause = Math.min(pause * 2, 400)) {
      const record = await this.files.get(userId, fileId);
      if (record?.status !== 'deleting') return record;
      const left = deadline - Date.now();
      if (left <= 0) throw new DeleteInProgress();
      await sleep(Math.min(pause, left));
    }
  }

  /** The owner deleted the file while it was restored: the version this restore copied goes again. */
  private async lostToDelete(bucket: string, key: string, copied: string | undefined): Promise<never> {
    if (copied) await this.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: copied }));
    throw new DeleteInProgress();
  }

  private async head(ref: ObjectRef): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await headWithChecksum(this.s3, ref);
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  /**
   * Deletes every version of `key` in the backup bucket. On AWS the bucket is under Object Lock
   * (terraform/storage.tf): a version still within its retention cannot be deleted (403
   * AccessDenied; this service holds no bypass). It stays, hidden behind a delete marker, and the
   * bucket's lifecycle removes it once its retention is over.
   */
  private async removeAllVersions(key: string): Promise<void> {
    const Bucket = this.config.BACKUP_BUCKET;
    let retained = false;
    for await (const page of paginateObjectVersions(this.s3, { Bucket, Prefix: key })) {
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        if (v.Key !== key) continue;
        try {
          await this.s3.send(new DeleteObjectCommand({ Bucket, Key: key, VersionId: v.VersionId }));
        } catch (err) {
          if ((err as { name?: string }).name !== 'AccessDenied') throw err;
          retained = true;
        }
      }
    }
    if (retained) await this.s3.send(new DeleteObjectCommand({ Bucket, Key: key }));
  }
}

/** The file name the upload service put into Content-Disposition (RFC 6266/8187), decoded by `content-disposition`. */
async function nameFrom(disposition: string | undefined, fallback: string): Promise<string> {
  if (!disposition) return fallback;
  try {
    const { parse } = await import('content-disposition');
    return parse(disposition).parameters.filename ?? fallback;
  } catch {
    return fallback;
  }
}
