import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { UploadConfig } from '../config';
import { FileNotFound, NothingUploaded, UnsupportedFileType, UploadInProgress, UploadMismatch } from '../errors';
import { type FileRecord, type FileRepository, fileKey } from '@scs/common/files';
import type { AllowedTypes, FileType } from '../content/file-types';
import { uuidv7 } from './ids';
import { Inspector } from '../content/inspector';
import type { FileObject, ObjectStore, StagedObject, StoredObject } from '../storage/object-store';
import type { Quota } from './quota';
import type { Logger } from '@scs/common';

/** How long one `/complete` may hold an upload before another request may take over (its request died). */
export const COMPLETE_LEASE_SECONDS = 900;

/** Differences between what S3 stored and what was issued, in words ("Content-Type is x, not y"). */
export function differences(stored: Partial<StoredObject>, issued: Partial<StoredObject>): string[] {
  const found: string[] = [];
  const compare = (what: string, actual: unknown, expected: unknown) => {
    if (actual !== expected) found.push(`${what} is ${JSON.stringify(actual ?? null)}, not ${JSON.stringify(expected)}`);
  };
  if (issued.size !== undefined) compare('the size', stored.size, issued.size);
  compare('Content-Type', stored.contentType, issued.contentType);
  compare('Content-Disposition', stored.contentDisposition, issued.contentDisposition);
  if (issued.serverSideEncryption !== undefined) compare('the encryption', stored.serverSideEncryption, issued.serverSideEncryption);
  for (const [k, v] of Object.entries(issued.metadata ?? {})) compare(`metadata ${k}`, stored.metadata?.[k], v);
  for (const [k, v] of Object.entries(issued.tags ?? {})) compare(`tag ${k}`, stored.tags?.[k], v);
  return found;
}

/**
 * The pending record of a direct upload (presigned POST or resumable) about to be reserved, and
 * the file's type: the name must be of an allowed type and `contentType` that type's media type
 * (415 UNSUPPORTED_FILE_TYPE). A new file id (UUIDv7 of `now`, ms), the file key, status
 * `pending`, created now and expiring `ttlSeconds` from now (epoch seconds); `sha256` is a
 * declared digest (hex), or '' until S3 computed one.
 */
export function pendingUpload(
  types: AllowedTypes,
  userId: string,
  input: { name: string; size: number; contentType: string; sensitive: boolean; sha256?: string | undefined },
  ttlSeconds: number,
  now = Date.now(),
): { record: FileRecord; type: FileType } {
  const { name, type } = types.resolve(input.name);
  if (input.contentType.split(';')[0]?.trim().toLowerCase() !== type.mediaType) {
    throw new UnsupportedFileType(`A .${type.ext} file must be declared as ${type.mediaType}`);
  }
  const fileId = uuidv7(now);
  const record: FileRecord = {
    userId,
    fileId,
    name,
    size: input.size,
    contentType: type.mediaType,
    sha256: input.sha256 ?? '',
    sensitive: input.sensitive,
    status: 'pending',
    key: fileKey(userId, fileId),
    createdAt: new Date(now).toISOString(),
    expiresAt: Math.floor(now / 1000) + ttlSeconds,
  };
  return { record, type };
}

/** 409 UPLOAD_IN_PROGRESS: another request holds the upload; ask again in a second (Retry-After). */
export function inProgress(): Error {
  return Object.assign(new UploadInProgress(), { retryAfterSeconds: 1 });
}

/**
 * Direct browser-to-S3 uploads: a presigned POST to a staging key (`incoming/{userId}/{fileId}`,
 * never a file), then `/complete`, which verifies the staged bytes with the same inspector as
 * streamed uploads and promotes them server-side to the file key. A verified file is therefore
 * never writable through the form it was uploaded with; exactly one `/complete` acts (a
 * conditional state change in DynamoDB), and the quota reservation is settled or released once.
 */
export class DirectUploads {
  constructor(
    private readonly store: ObjectStore,
    private readonly files: FileRepository,
    private readonly quota: Quota,
    private readonly types: AllowedTypes,
    private readonly config: UploadConfig,
    private readonly log: Pick<Logger, 'warn' | 'error'>,
  ) {}

  /**
   * A presigned POST bound to the staging key, the declared size and type, the tags and the
   * encryption. The quota is reserved now; `complete` verifies what arrived.
   */
  async presign(
    userId: string,
    input: { name: string; size: number; contentType: string; sensitive: boolean },
  ): Promise<{ id: string; url: string; fields: Record<string, string>; expiresAt: string }> {
    const { record, type } = pendingUpload(this.types, userId, input, this.config.PENDING_UPLOAD_SECONDS);
    await this.quota.reservePending(record);
    try {
      const post = await this.store.presignStaging(this.fileObject(record, type.mediaType), input.size);
      const expiresAt = new Date(Date.parse(record.createdAt) + this.config.PRESIGN_EXPIRES_SECONDS * 1000).toISOString();
      return { id: record.fileId, url: post.url, fields: post.fields, expiresAt };
    } catch (err) {
      await this.files.discard(record, { expiredBefore: Number.MAX_SAFE_INTEGER }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Verifies a direct upload and makes it a file. Only the request that claims the upload acts;
   * others are told it is in progress (409), or get the file once it is active. The staged object
   * must be what the form issued (size, Content-Type, Content-Disposition, owner metadata), its
   * bytes must be the declared type (the streamed uploads' inspector); it is then copied to the
   * file key with the file's attributes and tags, S3's SHA-256 of the copy must equal the one
   * computed, and the stored object must carry every attribute and tag as issued. A staged object
   * that is not what was issued, or not the declared type, is deleted with its record and its
   * reservation (400 UPLOAD_MISMATCH, 415); nothing uploaded yet is 404 NOTHING_UPLOADED (retry later).
   */
  async complete(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.files.get(userId, fileId);
    if (!record) throw new FileNotFound();
    if (record.status === 'active') return record;
    const claim = await this.files.claim(userId, fileId, COMPLETE_LEASE_SECONDS);
    if (!claim) return this.afterLostClaim(userId, fileId);

    const pendingUntil = record.expiresAt ?? Math.floor(Date.now() / 1000) + this.config.PENDING_UPLOAD_SECONDS;
    let staged: StagedObject | undefined;
    let promoted = false;
    try {
      const type = this.types.resolve(record.name).type;
      const file = this.fileObject(record, type.mediaType);
      staged = await this.store.headStaged(userId, fileId);
      if (!staged) throw new NothingUploaded();
      const mismatch = differences(staged, {
        size: record.size,
        contentType: type.mediaType,
        contentDisposition: this.store.attachment(record.name),
        metadata: { owner: userId, 'file-id': fileId },
      });
      if (mismatch.length > 0) {
        throw new UploadMismatch(
          `The uploaded object is not what its upload form allowed (${mismatch.join('; ')}): it was discarded; upload the file again, sending every field exactly as given`,
        );
      }

      const inspector = new Inspector({
        name: record.name,
        type,
        limit: record.size,
        overLimit: () => new UploadMismatch('The uploaded object changed while it was verified: it was discarded; upload the file again'),
      });
      const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
      await pipeline(await this.store.readStaged(userId, fileId, staged), inspector, discard);
      const verdict = inspector.verdict as NonNullable<Inspector['verdict']>;

      promoted = true;
      const final = { ...file, contentType: verdict.contentType };
      const copied = await this.store.promote(final, staged, verdict.sha256);
      if (copied !== undefined && copied !== verdict.sha256) {
        throw new UploadMismatch('The uploaded object changed while it was verified: it was discarded; upload the file again');
      }
      const wrong = differences(await this.store.describeFile(userId, fileId), this.store.expected(final, verdict.size, verdict.sha256));
      if (wrong.length > 0) throw new Error(`S3 stored ${record.key} differently from what was issued: ${wrong.join('; ')}`);

      const active: FileRecord = { ...record, size: verdict.size, contentType: verdict.contentType, sha256: verdict.sha256, status: 'active' };
      delete active.expiresAt;
      delete active.claim;
      if (!(await this.files.activateClaimed(active, claim, record.size))) {
        // The sweep removed the upload meanwhile (its time was up): it is not a file.
        await this.store.deleteFile(record.key, record.sensitive);
        throw new FileNotFound();
      }
      await this.store
        .deleteStaged(userId, fileId)
        .catch((err: unknown) => this.log.warn({ err, fileId }, 'removing a promoted staging object failed (the sweep will)'));
      return active;
    } catch (err) {
      await this.undo(record, claim, { refused: err instanceof UploadMismatch || err instanceof UnsupportedFileType, promoted, staged, pendingUntil }).catch(
        (e: unknown) => this.log.error({ err: e, fileId }, 'undoing a failed /complete failed'),
      );
      throw err;
    }
  }

  /** Another request holds the claim, finished, or the upload is gone. */
  private async afterLostClaim(userId: string, fileId: string): Promise<FileRecord> {
    const now = await this.files.get(userId, fileId);
    if (now?.status === 'active') return now;
    if (!now) throw new FileNotFound();
    throw inProgress();
  }

  /**
   * After a failed `/complete`: a refused upload is gone for good (staged and promoted objects,
   * record, reservation); otherwise (nothing uploaded yet, storage trouble) the promoted copy is
   * removed and the upload is pending again, for a later `/complete`.
   */
  private async undo(
    record: FileRecord,
    claim: string,
    how: { refused: boolean; promoted: boolean; staged?: StagedObject; pendingUntil: number },
  ): Promise<void> {
    if (how.promoted) await this.store.deleteFile(record.key, record.sensitive);
    if (!how.refused) {
      await this.files.unclaim(record, claim, how.pendingUntil);
      return;
    }
    if (await this.files.discard(record, { claim })) await this.store.deleteStaged(record.userId, record.fileId);
  }

  private fileObject(record: FileRecord, contentType: string): FileObject {
    return { userId: record.userId, fileId: record.fileId, name: record.name, contentType, sensitive: record.sensitive };
  }
}
