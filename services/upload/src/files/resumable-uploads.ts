import type { FileRecord, FileRepository } from '@scs/common/files';
import type { UploadConfig } from '../config';
import { AlreadyCompleted, ChecksumRequired, FileTooLarge, InvalidPart, UnsupportedFileType, UploadIncomplete, UploadMismatch, UploadNotFound } from '../errors';
import { COMPLETE_LEASE_SECONDS, differences, inProgress, pendingUpload } from './direct-uploads';
import type { AllowedTypes } from '../content/file-types';
import { inspectEnds, SNIFF_BYTES } from '../content/inspector';
import type { FileObject, HeldPart, ObjectStore } from '../storage/object-store';
import { humanBytes, type Quota } from './quota';
import { fileTags, type Logger } from '@scs/common';

/** The smallest part the service chooses, in bytes (S3's own minimum is 5 MiB). */
export const MIN_PART_BYTES = 8 * 1024 * 1024;
/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;
/** A part checksum as the API takes it: a SHA-256 in base64 (44 characters, one `=`). */
const BASE64_SHA256 = /^[A-Za-z0-9+/]{43}=$/;

/** What the API shows of an unfinished upload (`GET /api/files/uploads`); `describe` adds its parts. */
export interface UploadView {
  id: string;
  name: string;
  size: number;
  partSize: number;
  partCount: number;
  sensitive: boolean;
  expiresAt: string;
}

/**
 * The part size for a file of `size` bytes (at least 1): MIN_PART_BYTES, or the smallest whole
 * number of MiB that keeps the file within MAX_PARTS parts; and the number of parts.
 */
export function partPlan(size: number): { partSize: number; partCount: number } {
  const MiB = 1024 * 1024;
  const partSize = Math.max(MIN_PART_BYTES, Math.ceil(size / MAX_PARTS / MiB) * MiB);
  return { partSize, partCount: Math.max(1, Math.ceil(size / partSize)) };
}

/** The size part `n` (1-based) of an upload must have: `partSize`, and the rest for the last. */
function partBytes(size: number, partSize: number, n: number): number {
  const partCount = Math.max(1, Math.ceil(size / partSize));
  return n < partCount ? partSize : size - (partCount - 1) * partSize;
}

/** A file's SHA-256 as declared at create (hex or base64), as the record holds one (hex), or undefined. */
function declaredSha256(checksum: string | undefined): string | undefined {
  if (checksum === undefined) return undefined;
  if (/^[0-9a-fA-F]{64}$/.test(checksum)) return checksum.toLowerCase();
  return Buffer.from(checksum, 'base64').toString('hex');
}

/**
 * Resumable direct uploads (`/api/files/uploads`): the browser sends a large file straight to S3 as
 * a multipart upload, part by part, through presigned part URLs that S3 honours only for the
 * SHA-256 they were signed for; the service never carries the bytes. An upload is a pending record
 * (`#pending#<id>`, the same as a presigned-POST upload's: it holds the quota reservation of its
 * declared size and one file, and expires after UPLOAD_SESSION_TTL_SECONDS, when the sweep aborts
 * its multipart upload and releases the reservation) that also names its multipart upload and part
 * size. `/complete` is claimed by exactly one request (the same claim as a presigned-POST upload's).
 */
export class ResumableUploads {
  constructor(
    private readonly store: ObjectStore,
    private readonly files: FileRepository,
    private readonly quota: Quota,
    private readonly types: AllowedTypes,
    private readonly config: UploadConfig,
    private readonly log: Pick<Logger, 'warn' | 'error'>,
  ) {}

  /**
   * Starts an upload of `size` bytes (at least 1). The name must be allowed and the declared type
   * the name's (415 UNSUPPORTED_FILE_TYPE), `size` at most MAX_DIRECT_UPLOAD_BYTES (413
   * FILE_TOO_LARGE). The file's SHA-256 (`checksum`, hex or base64) may be declared here or at
   * `complete`; above COPY_IN_PARTS_ABOVE_BYTES (5 GiB) one of the two is needed, since S3 cannot
   * compute it for so large an object. The multipart upload is started, then the pending record written with the
   * reservation (413 QUOTA_EXCEEDED / FILE_COUNT_EXCEEDED: the multipart upload is aborted again).
   */
  async create(
    userId: string,
    input: { name: string; size: number; contentType: string; sensitive: boolean; checksum?: string | undefined },
  ): Promise<UploadView> {
    const declared = declaredSha256(input.checksum);
    const { record, type } = pendingUpload(this.types, userId, { ...input, sha256: declared }, this.config.UPLOAD_SESSION_TTL_SECONDS);
    if (input.size > this.config.MAX_DIRECT_UPLOAD_BYTES) throw new FileTooLarge(humanBytes(this.config.MAX_DIRECT_UPLOAD_BYTES));
    const { partSize, partCount } = partPlan(input.size);
    record.partSize = partSize;
    record.uploadId = await this.store.startMultipart(this.fileObject(record, type.mediaType));
    try {
      await this.quota.reservePending(record, this.config.MAX_DIRECT_UPLOAD_BYTES);
    } catch (err) {
      await this.store.abortUpload(record.key, record.uploadId).catch((e: unknown) => this.log.warn({ err: e, fileId: record.fileId }, 'aborting a refused upload failed (the sweep will)'));
      throw err;
    }
    return this.view(record, partCount);
  }

  /**
   * Presigned `PUT` URLs for the given parts, each signed for its SHA-256 (`checksum`, base64), with
   * the headers the browser must send; asking again for the same part (its URL expired, or the
   * credentials that signed it did) gives a fresh URL, any number of times. 400 INVALID_PART for a
   * part number outside 1..partCount or a checksum that is not a base64 SHA-256; 404 for an upload
   * that is not the caller's, is over, or expired.
   */
  async presignParts(
    userId: string,
    fileId: string,
    parts: { partNumber: number; checksum: string }[],
  ): Promise<{ partNumber: number; url: string; headers: Record<string, string>; expiresAt: string }[]> {
    const record = await this.unfinished(userId, fileId);
    const { partCount } = partPlan(record.size);
    for (const p of parts) {
      if (!Number.isInteger(p.partNumber) || p.partNumber < 1 || p.partNumber > partCount) {
        throw new InvalidPart(`Part ${p.partNumber} is not a part of this upload: its parts are numbered 1 to ${partCount}`);
      }
      if (!BASE64_SHA256.test(p.checksum)) {
        throw new InvalidPart(`The checksum of part ${p.partNumber} must be the SHA-256 of its bytes in base64 (44 characters)`);
      }
    }
    const expiresAt = new Date(Date.now() + this.config.PRESIGN_EXPIRES_SECONDS * 1000).toISOString();
    const uploadId = record.uploadId as string;
    return Promise.all(
      parts.map(async (p) => ({ partNumber: p.partNumber, ...(await this.store.presignPart(record.key, uploadId, p.partNumber, p.checksum)), expiresAt })),
    );
  }

  /** An unfinished upload and the parts S3 holds of it now (part number, size, ETag); 404 as `presignParts`. */
  async describe(userId: string, fileId: string): Promise<UploadView & { parts: { partNumber: number; size: number; etag: string }[] }> {
    const record = await this.unfinished(userId, fileId);
    const parts = await this.store.listParts(record.key, record.uploadId as string);
    if (!parts) throw new UploadNotFound();
    return { ...this.view(record), parts: parts.map(({ partNumber, size, etag }) => ({ partNumber, size, etag })) };
  }

  /** The caller's unfinished uploads that have not expired, oldest first. */
  async list(userId: string): Promise<UploadView[]> {
    const now = Math.floor(Date.now() / 1000);
    return (await this.files.unfinishedUploads(userId)).filter((r) => r.status === 'verifying' || (r.expiresAt ?? 0) >= now).map((r) => this.view(r));
  }

  /**
   * Makes an upload a file. Every part must be in S3 at its size (400 UPLOAD_INCOMPLETE, which
   * names what is missing; the upload stays as it was). The one request that claims the upload
   * completes the multipart upload with the part checksums S3 verified, checks the object (size,
   * attributes and tags as issued), its type from its first bytes (and its last, for a zip: ranged
   * GETs; 415 UNSUPPORTED_FILE_TYPE: every version of the object is deleted and the reservation
   * released), has S3 compute its SHA-256 (a server-side copy; above COPY_IN_PARTS_ABOVE_BYTES the
   * declared one is taken) and compares it with the declared one (400 UPLOAD_MISMATCH, the object
   * deleted), tags
   * the object with it, and writes the record while turning the reservation into usage of the
   * file's size (one transaction). A repeat once it is a file: 409 ALREADY_COMPLETED; while another
   * request completes it: 409 UPLOAD_IN_PROGRESS. A failure of storage leaves the upload pending
   * for another `/complete` (one whose multipart upload was already completed goes on from the object).
   * `checksum` (the file's SHA-256, hex or base64) declares it here when it was not at create: a
   * different one than declared at create, or none for an upload above COPY_IN_PARTS_ABOVE_BYTES
   * without one, is 400 VALIDATION_FAILED and changes nothing.
   */
  async complete(userId: string, fileId: string, checksum?: string): Promise<FileRecord> {
    const record = await this.files.get(userId, fileId);
    if (record?.status === 'active') throw new AlreadyCompleted(fileId);
    if (!record || !record.uploadId || (record.status !== 'pending' && record.status !== 'verifying')) throw new UploadNotFound();
    // An upload past its time is the sweep's, even before the sweep came.
    if (record.status === 'pending' && (record.expiresAt ?? 0) < Math.floor(Date.now() / 1000)) throw new UploadNotFound();
    const given = declaredSha256(checksum);
    if (given && record.sha256 && given !== record.sha256) {
      throw new ChecksumRequired(`The checksum given differs from the ${record.sha256} declared when the upload started`);
    }
    const declared = given ?? record.sha256;
    const s3ComputesDigest = record.size <= this.config.COPY_IN_PARTS_ABOVE_BYTES;
    if (!s3ComputesDigest && !declared) {
      throw new ChecksumRequired(
        `A file larger than ${humanBytes(this.config.COPY_IN_PARTS_ABOVE_BYTES)} needs its SHA-256 declared in "checksum" (hex or base64), at create or at complete: S3 cannot compute it for so large an object`,
      );
    }
    const claim = await this.files.claim(userId, fileId, COMPLETE_LEASE_SECONDS);
    if (!claim) return this.afterLostClaim(userId, fileId);

    const uploadId = record.uploadId;
    const pendingUntil = record.expiresAt ?? Math.floor(Date.now() / 1000) + this.config.UPLOAD_SESSION_TTL_SECONDS;
    const type = this.types.resolve(record.name).type;
    let completed = false;
    try {
      const parts = await this.store.listParts(record.key, uploadId);
      let versionId: string | undefined;
      if (parts) {
        this.checkParts(record, parts);
        try {
          versionId = await this.store.completeMultipart(record.key, uploadId, parts);
        } catch (err) {
          // A part was sent again between the listing and the completion: the client may complete again.
          if ((err as { name?: string }).name === 'InvalidPart') throw new UploadIncomplete('A part changed while the upload was completed: complete it again', { cause: err });
          throw err;
        }
        completed = true;
      } else if (await this.store.locate(record.key, false)) {
        // An earlier /complete completed the multipart upload and then failed: go on from the object.
        completed = true;
      } else {
        throw new UploadNotFound();
      }

      const file = this.fileObject(record, type.mediaType);
      const mismatch = differences(await this.store.describeFile(userId, fileId), { ...this.store.expected(file, record.size, ''), tags: fileTags({ sensitive: record.sensitive }) });
      if (mismatch.length > 0) throw new UploadMismatch(`The uploaded object is not what this upload issued (${mismatch.join('; ')}): it was discarded; upload the file again`);

      const head = await this.store.readRange(record.key, versionId, 0, Math.min(record.size, SNIFF_BYTES) - 1);
      const contentType = await inspectEnds({
        name: record.name,
        type,
        size: record.size,
        head,
        readTail: (bytes) => this.store.readRange(record.key, versionId, Math.max(0, record.size - bytes), record.size - 1),
      });

      let sha256 = s3ComputesDigest ? await this.store.sha256OfFile(userId, fileId, versionId) : declared;
      if (!sha256) throw new Error(`S3 computed no SHA-256 for ${record.key}`);
      if (declared && declared !== sha256.toLowerCase()) {
        throw new UploadMismatch(`The uploaded file's SHA-256 is ${sha256}, not the ${declared} declared: it was discarded; upload the file again`);
      }
      sha256 = sha256.toLowerCase();
      await this.store.tagDigest(file, sha256);

      const active: FileRecord = { ...record, contentType, sha256, status: 'active' };
      for (const k of ['expiresAt', 'claim', 'uploadId', 'partSize'] as const) delete active[k];
      if (!(await this.files.activateClaimed(active, claim, record.size))) {
        // The sweep removed the upload meanwhile (its time was up): it is not a file.
        await this.store.deleteFileVersions(record.key);
        throw new UploadNotFound();
      }
      return active;
    } catch (err) {
      const refused = err instanceof UploadMismatch || err instanceof UnsupportedFileType || err instanceof UploadNotFound;
      const gone = await this.undo(record, claim, { refused, completed, pendingUntil, incomplete: err instanceof UploadIncomplete }).catch((e: unknown) => {
        this.log.error({ err: e, fileId }, 'undoing a failed /complete failed');
        return false;
      });
      // A cancel took the upload meanwhile (what failed was a step on the object it removed).
      if (gone) throw new UploadNotFound();
      throw err;
    }
  }

  /**
   * Cancels an unfinished upload at once: its multipart upload is aborted (and an object a failed
   * or running `/complete` may have made is deleted), its record removed and its reservation
   * released. The cancel wins over a `/complete` under way: it takes the upload over from it, and
   * that `/complete` then answers 404 and removes what it made. 404 when the caller has no
   * unfinished upload by that id: never theirs, cancelled or expired already (a repeat: nothing
   * changes), or a file now (the file stays: it is deleted as a file).
   */
  async abort(userId: string, fileId: string): Promise<void> {
    const record = await this.files.get(userId, fileId);
    if (!record || !record.uploadId || (record.status !== 'pending' && record.status !== 'verifying')) throw new UploadNotFound();
    const claim = await this.files.takeOver(userId, fileId, COMPLETE_LEASE_SECONDS);
    if (!claim) throw new UploadNotFound();
    await this.store.abortUpload(record.key, record.uploadId);
    await this.store.deleteFileVersions(record.key);
    if (!(await this.files.discard(record, { claim }))) throw new UploadNotFound();
  }

  /** Another request holds the claim (409 UPLOAD_IN_PROGRESS), completed the upload (409 ALREADY_COMPLETED), or it is gone (404). */
  private async afterLostClaim(userId: string, fileId: string): Promise<never> {
    const now = await this.files.get(userId, fileId);
    if (now?.status === 'active') throw new AlreadyCompleted(fileId);
    if (!now) throw new UploadNotFound();
    throw inProgress();
  }

  /** Every part 1..partCount present at its size, and no other: else 400 UPLOAD_INCOMPLETE naming what is wrong. */
  private checkParts(record: FileRecord, parts: HeldPart[]): void {
    const partSize = record.partSize as number;
    const { partCount } = partPlan(record.size);
    const held = new Map(parts.map((p) => [p.partNumber, p]));
    const missing: number[] = [];
    const wrong: string[] = [];
    for (let n = 1; n <= partCount; n += 1) {
      const p = held.get(n);
      if (!p) missing.push(n);
      else if (p.size !== partBytes(record.size, partSize, n)) wrong.push(`part ${n} has ${p.size} bytes, not ${partBytes(record.size, partSize, n)}`);
    }
    const extra = parts.filter((p) => p.partNumber > partCount).map((p) => p.partNumber);
    if (missing.length === 0 && wrong.length === 0 && extra.length === 0) return;
    const list = (ns: number[]) => (ns.length > 10 ? `${ns.slice(0, 10).join(', ')} and ${ns.length - 10} more` : ns.join(', '));
    const problems = [
      ...(missing.length ? [`missing part${missing.length > 1 ? 's' : ''} ${list(missing)}`] : []),
      ...wrong.slice(0, 10),
      ...(extra.length ? [`parts beyond the last (${list(extra)})`] : []),
    ];
    throw new UploadIncomplete(`The upload is not complete: ${problems.join('; ')}. Send those parts again, then complete`);
  }

  /**
   * After a failed `/complete`: a refused upload is gone for good (every version of its object, its
   * multipart upload, its record and reservation); otherwise (parts missing, storage trouble) it is
   * pending again for a later `/complete`. True when the upload is gone because a cancel (or the
   * sweep) took it from this `/complete` while it ran.
   */
  private async undo(record: FileRecord, claim: string, how: { refused: boolean; completed: boolean; pendingUntil: number; incomplete: boolean }): Promise<boolean> {
    if (!how.refused) {
      if (await this.files.unclaim(record, claim, how.pendingUntil)) return false;
      // The claim was lost: a cancel (or the sweep) took the upload, and may have looked for its
      // object before this /complete made it. Unless another /complete holds it now, it is ours to remove.
      if (await this.files.get(record.userId, record.fileId)) return false;
      if (how.completed) await this.store.deleteFileVersions(record.key);
      return true;
    }
    await this.store.deleteFileVersions(record.key);
    if (!how.completed) await this.store.abortUpload(record.key, record.uploadId as string);
    await this.files.discard(record, { claim });
    return false;
  }

  /** A pending (or verifying) resumable upload of the caller's that has not expired; else 404 UPLOAD_NOT_FOUND. */
  private async unfinished(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.files.get(userId, fileId);
    const now = Math.floor(Date.now() / 1000);
    if (!record?.uploadId || !(record.status === 'verifying' || (record.status === 'pending' && (record.expiresAt ?? 0) >= now))) throw new UploadNotFound();
    return record;
  }

  private view(record: FileRecord, partCount = partPlan(record.size).partCount): UploadView {
    return {
      id: record.fileId,
      name: record.name,
      size: record.size,
      partSize: record.partSize as number,
      partCount,
      sensitive: record.sensitive,
      expiresAt: new Date((record.expiresAt ?? 0) * 1000).toISOString(),
    };
  }

  private fileObject(record: FileRecord, contentType: string): FileObject {
    return { userId: record.userId, fileId: record.fileId, name: record.name, contentType, sensitive: record.sensitive };
  }
}
