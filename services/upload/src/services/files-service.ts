import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { isDependencyOutage, isNotFound, StorageUnavailable } from '@scs/common';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { UploadConfig } from '../config';
import { FileNotFound, FileTooLarge, InvalidFileName, NothingUploaded, QuotaExceeded, UnsupportedFileType } from '../errors';
import type { FileRecord, FileRepository } from '../repositories/files';
import { attachmentDisposition } from './content-disposition';
import { FILE_TYPES, type FileType, normaliseFileName, SNIFF_BYTES } from './file-types';
import { uuidv7 } from './ids';

export interface FileView {
  id: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  sensitive: boolean;
  createdAt: string;
}

export const toView = (r: FileRecord): FileView => ({
  id: r.fileId,
  name: r.name,
  size: r.size,
  contentType: r.contentType,
  sha256: r.sha256,
  sensitive: r.sensitive,
  createdAt: r.createdAt,
});

/** Bytes in words a person reads: 104857600 -> "100 MiB". */
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

export interface IncomingFile {
  filename: string;
  stream: Readable & { truncated?: boolean };
  sensitive: boolean;
}

interface Logger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const objectKey = (userId: string, fileId: string) => `users/${userId}/${fileId}`;
const tagging = (sensitive: boolean, sha256?: string) =>
  `sensitive=${sensitive}${sha256 ? `&sha256=${sha256}` : ''}`;
const taggingXml = (sensitive: boolean) =>
  `<Tagging><TagSet><Tag><Key>sensitive</Key><Value>${sensitive}</Value></Tag></TagSet></Tagging>`;

/**
 * The file logic: streaming uploads into S3 with the type decided from the content, the SHA-256
 * computed on the way and the quota reserved up front; listing, downloads through short-lived
 * presigned URLs, deletion, and direct browser uploads that are verified before they count.
 */
export class FilesService {
  readonly allowed: ReadonlyMap<string, FileType>;

  constructor(
    private readonly s3: S3Client,
    private readonly files: FileRepository,
    private readonly config: UploadConfig,
    private readonly log: Logger,
  ) {
    const allowed = new Map<string, FileType>();
    for (const ext of config.ALLOWED_TYPES.split(',').map((s) => s.trim().toLowerCase())) {
      const type = FILE_TYPES[ext];
      if (!type) throw new Error(`ALLOWED_TYPES names "${ext}", which the service cannot recognise from content`);
      allowed.set(ext, type);
    }
    this.allowed = allowed;
  }

  /** The stored name and the type its extension promises; refused before any byte is read. */
  resolveName(raw: string): { name: string; type: FileType } {
    const parsed = normaliseFileName(raw);
    if (!parsed) throw new InvalidFileName();
    const type = this.allowed.get(parsed.ext);
    if (!type) {
      throw new UnsupportedFileType(
        `Files of type .${parsed.ext} are not accepted; allowed: ${[...this.allowed.keys()].join(', ')}`,
      );
    }
    return { name: parsed.name, type };
  }

  /**
   * Reserves quota for an upload whose request carries `contentLength` bytes (or the maximum when
   * unknown). Refuses at once a request that cannot fit the size limit or the quota.
   */
  async reserve(userId: string, contentLength: number | undefined): Promise<number> {
    const max = this.config.MAX_UPLOAD_BYTES;
    const multipartOverhead = 64 * 1024;
    if (contentLength !== undefined && contentLength > max + multipartOverhead) {
      throw new FileTooLarge(humanBytes(max));
    }
    const bytes = Math.min(contentLength ?? max, max);
    if (!(await this.files.reserve(userId, bytes, this.config.QUOTA_BYTES))) {
      throw new QuotaExceeded(humanBytes(this.config.QUOTA_BYTES));
    }
    return bytes;
  }

  async release(userId: string, reserved: number): Promise<void> {
    await this.files.release(userId, reserved).catch((err: unknown) => this.log.warn({ err, userId }, 'releasing a quota reservation failed'));
  }

  /**
   * Streams one file to S3 (FU-01, FU-05, FU-14, FU-15): the first bytes decide the type, the
   * SHA-256 and size are computed on the way, nothing is buffered whole or written to disk, and
   * any failure (too large, wrong type, client gone, S3 down) aborts the multipart upload so
   * nothing is left. The object is created with its tags, metadata and encryption.
   */
  async upload(userId: string, file: IncomingFile, reserved: number): Promise<FileRecord> {
    const { name, type } = this.resolveName(file.filename);
    const fileId = uuidv7();
    const key = objectKey(userId, fileId);
    const hash = createHash('sha256');
    const head: Buffer[] = [];
    let headBytes = 0;
    let size = 0;
    let upload: Upload | undefined;
    let body: PassThrough | undefined;
    let done: Promise<unknown> | undefined;
    let storageError: unknown;
    let aborting = false;

    const start = (complete: boolean) => {
      const first = Buffer.concat(head);
      if (!type.matches(first, complete)) {
        throw new UnsupportedFileType(`The content of "${name}" is not a .${type.ext} file`);
      }
      body = new PassThrough({ highWaterMark: 1024 * 1024 });
      upload = new Upload({
        client: this.s3,
        params: {
          Bucket: this.config.PRIMARY_BUCKET,
          Key: key,
          Body: body,
          ContentType: type.contentType,
          ContentDisposition: attachmentDisposition(name),
          ServerSideEncryption: 'AES256',
          // Tags go in the creating request (not lib-storage's `tags`, which tags afterwards), so the
          // object-created event already says whether the file is sensitive.
          Tagging: tagging(file.sensitive),
          Metadata: { owner: userId, 'file-id': fileId, 'original-name': encodeURIComponent(name) },
        },
        partSize: this.config.UPLOAD_PART_BYTES,
        queueSize: this.config.UPLOAD_QUEUE_SIZE,
        leavePartsOnError: false,
      });
      done = upload.done();
      done.catch((err: unknown) => {
        if (aborting) return;
        storageError = err;
        file.stream.destroy(err instanceof Error ? err : new Error(String(err)));
      });
      body.write(first);
    };

    try {
      for await (const chunk of file.stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > reserved) throw new QuotaExceeded(humanBytes(this.config.QUOTA_BYTES));
        hash.update(chunk);
        if (!body) {
          head.push(chunk);
          headBytes += chunk.length;
          if (headBytes >= SNIFF_BYTES) start(false);
          continue;
        }
        if (!body.write(chunk)) await Promise.race([once(body, 'drain'), done]);
      }
      if (file.stream.truncated) throw new FileTooLarge(humanBytes(this.config.MAX_UPLOAD_BYTES));
      if (!body) start(true);
      body?.end();
      await done;
    } catch (err) {
      body?.destroy();
      if (upload) {
        aborting = true;
        await upload.abort().catch((e: unknown) => this.log.warn({ err: e, key }, 'aborting the upload failed'));
        // lib-storage aborts the multipart upload while `done` settles: wait for that, then make sure
        // no part stays behind even if the abort raced the multipart upload's creation.
        await done?.catch(() => undefined);
        await this.abortMultipartUploads(key);
      }
      throw this.uploadError(storageError ?? err);
    }

    const record: FileRecord = {
      userId,
      fileId,
      name,
      size,
      contentType: type.contentType,
      sha256: hash.digest('hex'),
      sensitive: file.sensitive,
      status: 'active',
      key,
      createdAt: new Date().toISOString(),
    };
    try {
      await this.tagDigest(record);
      await this.files.put(record);
    } catch (err) {
      // No record may point at nothing, and no object may stay without a record.
      await this.deleteObject(key);
      throw err;
    }
    return record;
  }

  private async abortMultipartUploads(key: string): Promise<void> {
    try {
      const open = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.config.PRIMARY_BUCKET, Prefix: key }));
      for (const u of open.Uploads ?? []) {
        if (u.Key === key && u.UploadId) {
          await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.config.PRIMARY_BUCKET, Key: key, UploadId: u.UploadId }));
        }
      }
    } catch (err) {
      // The bucket's lifecycle rule aborts whatever is left after a day (IN-06).
      this.log.warn({ err, key }, 'could not check for leftover multipart uploads');
    }
  }

  private uploadError(err: unknown): unknown {
    const code = (err as { code?: string } | null)?.code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') return new FileTooLarge(humanBytes(this.config.MAX_UPLOAD_BYTES));
    if (isDependencyOutage(err) || (err as { $metadata?: unknown } | null)?.$metadata) return new StorageUnavailable();
    return err;
  }

  /** The digest is known only at the end: it joins the object's tags (no new version, no new event). */
  private async tagDigest(record: FileRecord): Promise<void> {
    const Tagging = {
      TagSet: [
        { Key: 'sensitive', Value: String(record.sensitive) },
        { Key: 'sha256', Value: record.sha256 },
      ],
    };
    try {
      await this.s3.send(new PutObjectTaggingCommand({ Bucket: this.config.PRIMARY_BUCKET, Key: record.key, Tagging }));
    } catch (err) {
      // A sensitive file may already have been moved by the mover.
      if (!record.sensitive || !isNotFound(err)) throw err;
      await this.s3.send(new PutObjectTaggingCommand({ Bucket: this.config.SENSITIVE_BUCKET, Key: record.key, Tagging }));
    }
  }

  async settle(userId: string, reserved: number, actual: number): Promise<void> {
    await this.files.settle(userId, reserved, actual);
  }

  async usedBytes(userId: string): Promise<number> {
    return (await this.files.usage(userId)).usedBytes;
  }

  async list(userId: string, limit: number, cursor?: string): Promise<{ items: FileView[]; nextCursor: string | null }> {
    const page = await this.files.list(userId, limit, cursor);
    return { items: page.items.map(toView), nextCursor: page.next ?? null };
  }

  /** An active file of this user; another user's id is simply not found (DL-03). */
  async get(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.files.get(userId, fileId);
    if (!record || record.status !== 'active') throw new FileNotFound();
    return record;
  }

  /** Where the object is now: the sensitive bucket once the mover has moved it, else primary. */
  private async locate(record: FileRecord): Promise<string | undefined> {
    const buckets = record.sensitive
      ? [this.config.SENSITIVE_BUCKET, this.config.PRIMARY_BUCKET]
      : [this.config.PRIMARY_BUCKET, this.config.SENSITIVE_BUCKET];
    for (const bucket of buckets) {
      try {
        await this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: record.key }));
        return bucket;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return undefined;
  }

  /** A presigned GET (DL-05: short-lived) that downloads as an attachment under the stored name (DL-01). */
  async downloadUrl(userId: string, fileId: string): Promise<string> {
    const record = await this.get(userId, fileId);
    const bucket = await this.locate(record);
    if (!bucket) throw new FileNotFound();
    return getSignedUrl(
      this.s3,
      new GetObjectCommand({
        Bucket: bucket,
        Key: record.key,
        ResponseContentDisposition: attachmentDisposition(record.name),
        ResponseContentType: record.contentType,
      }),
      { expiresIn: this.config.DOWNLOAD_URL_EXPIRES_SECONDS },
    );
  }

  async delete(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.get(userId, fileId);
    await this.deleteObject(record.key);
    if (await this.files.delete(userId, fileId)) await this.files.freeUsage(userId, record.size);
    return record;
  }

  private async deleteObject(key: string): Promise<void> {
    await Promise.all(
      [this.config.PRIMARY_BUCKET, this.config.SENSITIVE_BUCKET].map((Bucket) =>
        this.s3.send(new DeleteObjectCommand({ Bucket, Key: key })).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        }),
      ),
    );
  }

  /**
   * A presigned POST for a direct browser upload, bound to one key, the declared size and type,
   * the tags and the encryption. The quota is reserved now; `complete` verifies what arrived.
   */
  async presign(
    userId: string,
    input: { name: string; size: number; contentType: string; sensitive: boolean },
  ): Promise<{ id: string; url: string; fields: Record<string, string>; expiresAt: string }> {
    const { name, type } = this.resolveName(input.name);
    if (input.contentType.split(';')[0]?.trim().toLowerCase() !== type.contentType.split(';')[0]) {
      throw new UnsupportedFileType(`A .${type.ext} file must be declared as ${type.contentType.split(';')[0]}`);
    }
    if (input.size > this.config.MAX_UPLOAD_BYTES) throw new FileTooLarge(humanBytes(this.config.MAX_UPLOAD_BYTES));
    if (!(await this.files.reserve(userId, input.size, this.config.QUOTA_BYTES))) {
      throw new QuotaExceeded(humanBytes(this.config.QUOTA_BYTES));
    }
    const fileId = uuidv7();
    const key = objectKey(userId, fileId);
    const expiresAt = new Date(Date.now() + this.config.PRESIGN_EXPIRES_SECONDS * 1000);
    try {
      await this.files.put({
        userId,
        fileId,
        name,
        size: input.size,
        contentType: type.contentType,
        sha256: '',
        sensitive: input.sensitive,
        status: 'pending',
        key,
        createdAt: new Date().toISOString(),
        expiresAt: Math.floor(Date.now() / 1000) + this.config.PENDING_UPLOAD_SECONDS,
      });
      const fields = {
        'Content-Type': type.contentType,
        'Content-Disposition': attachmentDisposition(name),
        tagging: taggingXml(input.sensitive),
        'x-amz-server-side-encryption': 'AES256',
        'x-amz-meta-owner': userId,
        'x-amz-meta-file-id': fileId,
        'x-amz-meta-original-name': encodeURIComponent(name),
      };
      const post = await createPresignedPost(this.s3, {
        Bucket: this.config.PRIMARY_BUCKET,
        Key: key,
        Conditions: [
          ['content-length-range', input.size, input.size],
          ...Object.entries(fields).map(([k, v]) => ({ [k]: v })),
        ],
        Fields: fields,
        Expires: this.config.PRESIGN_EXPIRES_SECONDS,
      });
      return { id: fileId, url: post.url, fields: post.fields, expiresAt: expiresAt.toISOString() };
    } catch (err) {
      await this.release(userId, input.size);
      await this.files.delete(userId, fileId).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Verifies a direct upload before it counts: the object must exist with the declared size and
   * its bytes must be the declared type; the SHA-256 is computed here. A lying object is deleted.
   */
  async complete(userId: string, fileId: string): Promise<FileRecord> {
    const record = await this.files.get(userId, fileId);
    if (!record) throw new FileNotFound();
    if (record.status === 'active') return record;
    const bucket = await this.locate(record);
    if (!bucket) throw new NothingUploaded();
    const type = this.resolveName(record.name).type;

    const out = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: record.key }));
    const hash = createHash('sha256');
    const head: Buffer[] = [];
    let headBytes = 0;
    let size = 0;
    for await (const chunk of out.Body as AsyncIterable<Buffer>) {
      size += chunk.length;
      hash.update(chunk);
      if (headBytes < SNIFF_BYTES) {
        head.push(chunk);
        headBytes += chunk.length;
      }
    }
    const first = Buffer.concat(head).subarray(0, SNIFF_BYTES);
    const complete = size <= SNIFF_BYTES;
    if (size !== record.size || !type.matches(first, complete)) {
      await this.deleteObject(record.key);
      await this.files.delete(userId, fileId);
      await this.release(userId, record.size);
      throw new UnsupportedFileType(
        size !== record.size
          ? `The uploaded object has ${size} bytes, not the declared ${record.size}: it was discarded`
          : `The content of "${record.name}" is not a .${type.ext} file: it was discarded`,
      );
    }
    const active: FileRecord = { ...record, sha256: hash.digest('hex'), status: 'active' };
    delete active.expiresAt;
    await this.tagDigest(active);
    await this.files.put(active);
    await this.files.settle(userId, record.size, size);
    return active;
  }

  /**
   * Heals what a crash or an abandoned direct upload can leave: pending records past their time
   * (their object, if any, is deleted and the reservation released), and objects under users/
   * that no record points at and that are older than the pending window.
   */
  async sweep(now = Date.now()): Promise<{ expiredPending: number; orphanObjects: number }> {
    let expiredPending = 0;
    let orphanObjects = 0;
    for (const record of await this.files.expiredPending(Math.floor(now / 1000))) {
      await this.deleteObject(record.key);
      if (await this.files.delete(record.userId, record.fileId)) {
        await this.release(record.userId, record.size);
        expiredPending += 1;
      }
    }
    const cutoff = now - this.config.PENDING_UPLOAD_SECONDS * 1000;
    for (const bucket of [this.config.PRIMARY_BUCKET, this.config.SENSITIVE_BUCKET]) {
      let token: string | undefined;
      do {
        const page = await this.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'users/', ContinuationToken: token }));
        for (const obj of page.Contents ?? []) {
          const [, userId, fileId] = (obj.Key ?? '').split('/');
          if (!userId || !fileId || (obj.LastModified?.getTime() ?? now) > cutoff) continue;
          if (!(await this.files.get(userId, fileId))) {
            await this.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: obj.Key }));
            orphanObjects += 1;
          }
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    }
    if (expiredPending || orphanObjects) this.log.info({ expiredPending, orphanObjects }, 'sweep removed leftovers');
    return { expiredPending, orphanObjects };
  }
}
