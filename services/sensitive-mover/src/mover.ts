import {
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  type HeadObjectCommandOutput,
  type ObjectVersion,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isObjectGone as isGone } from '@scs/common/aws';
import { headWithChecksum, isSha256Hex as isSha256, type ServerSideCopier, sha256Base64 } from '@scs/common/s3-copy';
import { paginateObjectVersions } from '@scs/common/s3-versions';
import { FILE_KEY_PREFIX, type FileRecord, type FileRepository, isTaggedSensitive, parseFileKey, parseStagingKey, taggingQuery, tagsOf } from '@scs/common/files';
import type { MoverConfig } from './config';
import type { CreatedObject } from './events';
import type { Logger } from '@scs/common/logger';

/** What became of one object-created event; every outcome but an error is a success (no retry). */
export type MoveOutcome =
  /** Copied to the vault, verified, every plaintext version removed, record updated. */
  | 'moved'
  /** Nothing of that version is left in the primary bucket (a repeated or late event: R9). */
  | 'already-moved'
  /** Not tagged sensitive=true: left alone. */
  | 'not-sensitive'
  /** A newer version (or a delete) came after it: removed without being copied (R10). */
  | 'superseded'
  /** The file was deleted while it moved: the vault copy was removed again. */
  | 'deleted'
  /** A direct upload's staged bytes that an upload still waits for (pending or verifying): left to `/complete`. */
  | 'staged'
  /** Bytes posted to a staging key no upload waits for (after `/complete`, or a refused or expired upload): removed. */
  | 'late-upload-removed'
  /** Not in the primary bucket, or not a file or staging key: nothing to do. */
  | 'ignored';

/** The upload service has not finished the file yet (SHA-256 and record come a moment after the object). */
export class FileNotReady extends Error {
  constructor(key: string, waitedMs: number) {
    super(`the record of ${key} was not complete after ${waitedMs} ms; the event will be retried`);
    this.name = 'FileNotReady';
  }
}

/** Metadata the vault copy carries about its source, for idempotency and ordering. */
const SOURCE_VERSION = 'source-version-id';
const SOURCE_MODIFIED = 'source-last-modified';
/** The primary versions older than the copied one when it was copied (comma-separated ids): the order of versions, kept in the vault (R10). */
const SOURCE_OLDER = 'source-older-versions';
/** User metadata is limited to 2 KB in all: at most this many characters of older version ids. */
const SOURCE_OLDER_MAX_CHARS = 1024;

export interface MoverDeps {
  s3: S3Client;
  copier: ServerSideCopier;
  files: FileRepository;
  log: Pick<Logger, 'info' | 'warn'>;
  now?: () => Date;
}

/** The ids of older versions as a copy's metadata carries them (newest first, within the size limit). */
function olderVersions(older: ObjectVersion[]): string {
  let out = '';
  for (const v of older) {
    const next = out ? `${out},${v.VersionId ?? 'null'}` : (v.VersionId ?? 'null');
    if (next.length > SOURCE_OLDER_MAX_CHARS) break;
    out = next;
  }
  return out;
}

/** True when a vault copy says `versionId` was older than its own source (R10). */
function isOlderThan(vault: HeadObjectCommandOutput, versionId: string): boolean {
  return (vault.Metadata?.[SOURCE_OLDER] ?? '').split(',').includes(versionId);
}

const unquote = (etag: string | undefined) => etag?.replace(/"/g, '');

/**
 * The sensitive mover: for a file object tagged `sensitive=true`, a verified server-side copy into
 * the vault (SSE-KMS under SENSITIVE_KMS_KEY_ID, metadata and tags kept), then the plaintext
 * versions removed from the primary bucket, then the record updated. Each step can be repeated:
 * a duplicate, late or retried event finds what is already done and finishes the rest.
 */
export class SensitiveMover {
  private readonly now: () => Date;

  constructor(
    private readonly config: Pick<MoverConfig, 'PRIMARY_BUCKET' | 'SENSITIVE_BUCKET' | 'SENSITIVE_KMS_KEY_ID' | 'MOVER_RECORD_WAIT_MS'>,
    private readonly deps: MoverDeps,
  ) {
    this.now = deps.now ?? (() => new Date());
  }

  async move(object: CreatedObject): Promise<MoveOutcome> {
    const { s3, log } = this.deps;
    const { PRIMARY_BUCKET } = this.config;
    const staged = object.bucket === PRIMARY_BUCKET ? parseStagingKey(object.key) : undefined;
    if (staged) return this.stagedUpload(object.key, staged);
    const file = parseFileKey(object.key);
    // R14: the function acts on the primary bucket's file objects only, never on what it writes itself.
    if (object.bucket !== PRIMARY_BUCKET || !object.key.startsWith(FILE_KEY_PREFIX) || !file) return 'ignored';

    const { versions, latestIsDeleteMarker } = await this.versionsOf(object.key);
    const version = this.namedVersion(object, versions);
    if (!version?.VersionId) return this.alreadyMoved(object.key, file);
    const ref = { Bucket: PRIMARY_BUCKET, Key: object.key, VersionId: version.VersionId };

    let tags: Record<string, string>;
    try {
      tags = tagsOf((await s3.send(new GetObjectTaggingCommand(ref))).TagSet);
    } catch (err) {
      if (isGone(err)) return this.alreadyMoved(object.key, file);
      throw err;
    }
    if (!isTaggedSensitive(tags)) return 'not-sensitive';

    // R10: a newer version or a delete came after this one; the newer one has (or gets) its own event.
    if (!version.IsLatest || latestIsDeleteMarker) {
      await this.removeVersions(object.key, [version]);
      return 'superseded';
    }

    const record = await this.waitForRecord(file.userId, file.fileId, object.key);
    const source = await headWithChecksum(s3, ref);
    const sourceModified = version.LastModified?.toISOString() ?? '';
    const vault = await this.vaultHead(object.key);
    const vaultSource = vault?.Metadata?.[SOURCE_VERSION];
    if (vault && vaultSource !== version.VersionId && (isOlderThan(vault, version.VersionId) || (vault.Metadata?.[SOURCE_MODIFIED] ?? '') > sourceModified)) {
      // The vault already holds a copy of a newer version: never an older one over it.
      await this.removeVersions(object.key, [version]);
      return 'superseded';
    }

    const index = versions.indexOf(version);
    let vaultVersion: string | undefined;
    if (vault && vaultSource === version.VersionId && (await this.isVerifiedCopy(vault, source, record))) {
      // R11: an earlier attempt copied and verified it, then stopped before the source was removed.
      vaultVersion = vault.VersionId;
      log.info({ key: object.key, versionId: version.VersionId }, 'sensitive mover: vault copy from an earlier attempt found');
    } else {
      const copy = await this.deps.copier.copy({
        source: ref,
        sourceHead: source,
        destination: { Bucket: this.config.SENSITIVE_BUCKET, Key: object.key },
        encryption: { type: 'aws:kms', keyId: this.config.SENSITIVE_KMS_KEY_ID },
        sha256: record.sha256,
        contentType: source.ContentType,
        contentDisposition: source.ContentDisposition,
        metadata: {
          ...source.Metadata,
          [SOURCE_VERSION]: version.VersionId,
          [SOURCE_MODIFIED]: sourceModified,
          [SOURCE_OLDER]: olderVersions(versions.slice(index + 1)),
        },
        tagging: taggingQuery(tags),
      });
      vaultVersion = copy.versionId;
      // R10: the copy is of the pinned version; was that version overwritten while it was copied?
      if (await this.overtaken(object.key, version.VersionId, vaultVersion)) {
        await s3.send(new DeleteObjectCommand({ Bucket: this.config.SENSITIVE_BUCKET, Key: object.key, VersionId: vaultVersion }));
        await this.removeVersions(object.key, [version]);
        return 'superseded';
      }
    }

    // Only now, with a verified copy in the vault, do plaintext versions go: this one and any older
    // (each by the version id listed before the copy: never a version written since).
    await this.removeVersions(object.key, versions.slice(index));

    if (!(await this.deps.files.setLocation(file.userId, file.fileId, 'sensitive', record.sha256, this.now()))) {
      // Deleted while it moved: the upload service's delete may have run before the copy landed.
      await s3.send(new DeleteObjectCommand({ Bucket: this.config.SENSITIVE_BUCKET, Key: object.key, VersionId: vaultVersion }));
      return 'deleted';
    }
    return 'moved';
  }

  /**
   * R10: after copying the pinned version `versionId` into the vault (as `copied`), whether a newer
   * version overtook it while it was copied: a newer version (or a delete) is now in the primary
   * bucket, or (the newer one moved already, with this version) the vault holds, from before this
   * copy, a copy of a version that was newer than this one (its older-versions list names it).
   * Then this copy must not stay over it.
   */
  private async overtaken(key: string, versionId: string, copied: string | undefined): Promise<boolean> {
    const now = await this.versionsOf(key);
    const latest = now.versions[0];
    if (latest && (latest.VersionId !== versionId || now.latestIsDeleteMarker)) return true;
    if (latest) return false;
    // The version is gone from primary: moved by a newer version's event, or by a repeat of this one.
    let seenOwn = false;
    for await (const page of paginateObjectVersions(this.deps.s3, { Bucket: this.config.SENSITIVE_BUCKET, Prefix: key })) {
      for (const v of (page.Versions ?? []).filter((x) => x.Key === key)) {
        if (v.VersionId === copied) {
          seenOwn = true;
          continue;
        }
        // Copies made before this one (S3 lists newer versions first).
        if (!seenOwn) continue;
        const head = await headWithChecksum(this.deps.s3, { Bucket: this.config.SENSITIVE_BUCKET, Key: key, VersionId: v.VersionId }).catch((err: unknown) => {
          if (isGone(err)) return undefined;
          throw err;
        });
        if (head && isOlderThan(head, versionId)) return true;
      }
    }
    return false;
  }

  /**
   * A direct upload's staging key (`incoming/{userId}/{fileId}`): its bytes are kept only while
   * the upload waits for them (a pending or verifying record; `/complete` removes them). Otherwise
   * they were posted again after `/complete` (or after the upload was refused or expired): no
   * upload will ever count or verify them, so every version of the key goes now, not at the
   * next sweep (for a sensitive upload they sit in the primary bucket under SSE-S3).
   */
  private async stagedUpload(key: string, upload: { userId: string; fileId: string }): Promise<MoveOutcome> {
    const record = await this.deps.files.get(upload.userId, upload.fileId);
    if (record?.status === 'pending' || record?.status === 'verifying') return 'staged';
    for await (const page of paginateObjectVersions(this.deps.s3, { Bucket: this.config.PRIMARY_BUCKET, Prefix: key })) {
      const found = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].filter((v) => v.Key === key);
      await this.removeVersions(key, found);
    }
    return 'late-upload-removed';
  }

  /** Every version of exactly `key` in the primary bucket, newest first (S3's order), and whether a delete marker is current. */
  private async versionsOf(key: string): Promise<{ versions: ObjectVersion[]; latestIsDeleteMarker: boolean }> {
    const versions: ObjectVersion[] = [];
    let latestIsDeleteMarker = false;
    for await (const page of paginateObjectVersions(this.deps.s3, { Bucket: this.config.PRIMARY_BUCKET, Prefix: key })) {
      versions.push(...(page.Versions ?? []).filter((v) => v.Key === key));
      if ((page.DeleteMarkers ?? []).some((m) => m.Key === key && m.IsLatest)) latestIsDeleteMarker = true;
    }
    return { versions, latestIsDeleteMarker };
  }

  /**
   * The version the event names. Without a version id (an unversioned write, or an emulator that
   * leaves it out) the newest version with the event's ETag, else the newest version.
   */
  private namedVersion(object: CreatedObject, versions: ObjectVersion[]): ObjectVersion | undefined {
    if (object.versionId) return versions.find((v) => v.VersionId === object.versionId);
    const etag = unquote(object.eTag);
    return etag ? versions.find((v) => unquote(v.ETag) === etag) : versions[0];
  }

  private async removeVersions(key: string, versions: ObjectVersion[]): Promise<void> {
    for (const v of versions) {
      await this.deps.s3
        .send(new DeleteObjectCommand({ Bucket: this.config.PRIMARY_BUCKET, Key: key, VersionId: v.VersionId }))
        .catch((err: unknown) => {
          if (!isGone(err)) throw err;
        });
    }
  }

  private async vaultHead(key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await headWithChecksum(this.deps.s3, { Bucket: this.config.SENSITIVE_BUCKET, Key: key });
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  private async isVerifiedCopy(vault: HeadObjectCommandOutput, source: HeadObjectCommandOutput, record: FileRecord): Promise<boolean> {
    return (
      vault.ContentLength === source.ContentLength &&
      vault.ChecksumSHA256 === sha256Base64(record.sha256) &&
      vault.ServerSideEncryption === 'aws:kms' &&
      (await this.deps.copier.isKey(vault.SSEKMSKeyId, this.config.SENSITIVE_KMS_KEY_ID))
    );
  }

  /**
   * The version is gone from the primary bucket: moved by an earlier event, or deleted. If the
   * vault holds the file and the record does not say so yet (a stop between delete and record
   * update), the record is brought up to date.
   */
  private async alreadyMoved(key: string, file: { userId: string; fileId: string }): Promise<MoveOutcome> {
    const record = await this.deps.files.get(file.userId, file.fileId);
    if (record?.status === 'active' && record.location !== 'sensitive' && isSha256(record.sha256)) {
      const vault = await this.vaultHead(key);
      if (vault?.ChecksumSHA256 === sha256Base64(record.sha256)) {
        await this.deps.files.setLocation(file.userId, file.fileId, 'sensitive', record.sha256, this.now());
      }
    }
    return 'already-moved';
  }

  /**
   * The record with the SHA-256 the upload service computed. The object-created event can arrive
   * before the upload service has written it: wait (with backoff) up to MOVER_RECORD_WAIT_MS, then
   * fail so the invocation is retried.
   */
  private async waitForRecord(userId: string, fileId: string, key: string): Promise<FileRecord & { sha256: string }> {
    const started = Date.now();
    const record = await this.deps.files.completeRecord(userId, fileId, { waitMs: this.config.MOVER_RECORD_WAIT_MS, firstPauseMs: 100, maxPauseMs: 2_000 });
    if (!record) throw new FileNotReady(key, Date.now() - started);
    return record;
  }
}
