import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
  type Tag,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { isNotFound } from '@scs/common';
import type { BuildMiddleware, MetadataBearer } from '@smithy/types';
import { type Readable, Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { UploadConfig } from '../config';
import { PartBuffers } from './part-buffers';

/** Object keys of files: the only keys consumers (the mover, backups) treat as files. */
export const FILE_PREFIX = 'users/';
/** Object keys of direct browser uploads before they are verified: never files. */
export const STAGING_PREFIX = 'incoming/';

export const fileKey = (userId: string, fileId: string) => `${FILE_PREFIX}${userId}/${fileId}`;
export const stagingKey = (userId: string, fileId: string) => `${STAGING_PREFIX}${userId}/${fileId}`;

/** What a file object is created with (one request: the object-created event already carries it). */
export interface FileObject {
  userId: string;
  fileId: string;
  /** The stored file name (only in Content-Disposition, never in user metadata: AWS caps that at 2 KB). */
  name: string;
  /** The Content-Type the service decided (a text's charset once known). */
  contentType: string;
  sensitive: boolean;
}

/** How a staged direct upload looks in S3. */
export interface StagedObject {
  size: number;
  versionId?: string;
  etag: string;
  contentType?: string;
  contentDisposition?: string;
  metadata: Record<string, string>;
}

/** How a file object looks in S3, for comparison with what was issued. */
export interface StoredObject extends Omit<StagedObject, 'versionId' | 'etag'> {
  serverSideEncryption?: string;
  tags: Record<string, string>;
}

const tagSet = (tags: Record<string, string>): Tag[] => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

/** S3's limit on the parts of one multipart upload. */
const MAX_PARTS = 10_000;

/** A CRC32 as S3 carries it: the four bytes big-endian, base64. */
export const crc32Base64 = (crc: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
};

/**
 * Sends the body of a request that carries a checksum S3 verifies (`x-amz-checksum-*`) with an
 * unsigned payload: SigV4 signs the headers (the checksum among them) and S3 verifies the body
 * against the checksum, so the signer's own SHA-256 of every body (a second hash of every byte)
 * adds no check S3 would not make. The SDK does the same for the streamed bodies it sends with a
 * trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER). A request without a checksum header
 * keeps its signed payload.
 */
const unsignedPayloadWithChecksum =
  <I extends object, O extends MetadataBearer>(): BuildMiddleware<I, O> =>
  (next) =>
  async (args) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers && Object.keys(request.headers).some((h) => h.toLowerCase().startsWith('x-amz-checksum-'))) {
      request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    }
    return next(args);
  };
const UNSIGNED_PAYLOAD = { step: 'build', name: 'scsUnsignedPayloadWithChecksum', override: true } as const;

/** A PutObject or UploadPart whose body goes with a checksum of ours and an unsigned payload. */
function withChecksum<C extends PutObjectCommand | UploadPartCommand>(command: C): C {
  if (command instanceof PutObjectCommand) command.middlewareStack.add(unsignedPayloadWithChecksum(), UNSIGNED_PAYLOAD);
  else command.middlewareStack.add(unsignedPayloadWithChecksum(), UNSIGNED_PAYLOAD);
  return command;
}

/**
 * Every S3 call of the upload service. File objects are created in one request with their tags,
 * metadata, disposition and server-side encryption (SSE-S3 in the primary bucket); the mover may
 * later move a sensitive file to the sensitive bucket under the same key.
 */
export class ObjectStore {
  private readonly primary: string;
  private readonly sensitive: string;
  /** Part buffers shared by every upload of the process: one upload's worth reserved at start. */
  private readonly buffers: PartBuffers;

  /** The store, with the `content-disposition` package loaded (an ES module, so imported once here). */
  static async create(s3: S3Client, config: UploadConfig): Promise<ObjectStore> {
    const { create } = await import('content-disposition');
    return new ObjectStore(s3, config, (name) => create(name, { type: 'attachment' }));
  }

  private constructor(
    private readonly s3: S3Client,
    private readonly config: UploadConfig,
    /** `attachment` with the name encoded per RFC 6266 / RFC 5987 (DL-01): nothing in a name can break the header. */
    readonly attachment: (name: string) => string,
  ) {
    this.primary = config.PRIMARY_BUCKET;
    this.sensitive = config.SENSITIVE_BUCKET;
    this.buffers = new PartBuffers(config.UPLOAD_PART_BYTES, config.UPLOAD_QUEUE_SIZE + 1);
  }

  /** Readiness: the primary bucket answers. */
  async ping(): Promise<void> {
    await this.s3.send(new HeadBucketCommand({ Bucket: this.primary }));
  }

  /** The attributes every file object carries, as issued. */
  private attributes(file: FileObject) {
    return {
      ContentType: file.contentType,
      ContentDisposition: this.attachment(file.name),
      ServerSideEncryption: 'AES256' as const,
      Metadata: { owner: file.userId, 'file-id': file.fileId },
    };
  }

  /**
   * The last stage of an upload's stream: writes the bytes into `users/{userId}/{fileId}`. A file
   * smaller than one part is one PutObject when the stream ends; a larger one is a multipart upload
   * of UPLOAD_PART_BYTES parts, up to UPLOAD_QUEUE_SIZE of them in flight (the stream waits while
   * they are: back-pressure to the client). The object is created with its tags, metadata,
   * disposition and encryption in the creating request (not tagged afterwards, which would race
   * the mover), and with the Content-Type `contentType()` gives at that moment: by then the type
   * has seen at least the first bytes, and a small text file all of its bytes.
   *
   * Each part is copied once, into a reused part buffer, and carries a CRC32 (native zlib) that S3
   * verifies before it accepts the part; the payload itself is not hashed a second time for the
   * signature (see `unsignedPayloadWithChecksum`).
   *
   * When the stream fails, the writer waits for the parts in flight, aborts the multipart upload,
   * and only then settles `settled`: once it has, a failed upload has left no object and no parts.
   */
  fileWriter(file: FileObject, contentType: () => string | undefined): FileWriter {
    return new FileWriter(this.s3, this.buffers, this.config.UPLOAD_QUEUE_SIZE, {
      Bucket: this.primary,
      Key: fileKey(file.userId, file.fileId),
      Tagging: `sensitive=${file.sensitive}`,
      attributes: () => ({ ...this.attributes(file), ContentType: contentType() ?? file.contentType }),
    });
  }

  /**
   * Adds the SHA-256 tag once the bytes are complete (PutObjectTagging: no new version, no new
   * event). A sensitive file may already be in the sensitive bucket.
   */
  async tagDigest(file: FileObject, sha256: string): Promise<void> {
    const Key = fileKey(file.userId, file.fileId);
    const Tagging = { TagSet: tagSet({ sensitive: String(file.sensitive), sha256 }) };
    try {
      await this.s3.send(new PutObjectTaggingCommand({ Bucket: this.primary, Key, Tagging }));
    } catch (err) {
      if (!file.sensitive || !isNotFound(err)) throw err;
      await this.s3.send(new PutObjectTaggingCommand({ Bucket: this.sensitive, Key, Tagging }));
    }
  }

  /**
   * Deletes a file object wherever it may be: the primary bucket, and for a sensitive file also the
   * sensitive one (where the mover puts it). Absent is fine.
   */
  async deleteFile(key: string, sensitive: boolean): Promise<void> {
    const buckets = sensitive ? [this.primary, this.sensitive] : [this.primary];
    await Promise.all(buckets.map((Bucket) => this.deleteIfPresent(Bucket, key)));
  }

  /**
   * Deletes the current version of an object that exists. Looking first matters in versioned
   * buckets, where deleting an absent key would still add a delete marker (and an event).
   */
  private async deleteIfPresent(Bucket: string, Key: string): Promise<void> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket, Key }));
      await this.s3.send(new DeleteObjectCommand({ Bucket, Key }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** The bucket that holds a file now: the sensitive one once the mover moved it, else primary. */
  async locate(key: string, sensitive: boolean): Promise<string | undefined> {
    for (const Bucket of sensitive ? [this.sensitive, this.primary] : [this.primary, this.sensitive]) {
      try {
        await this.s3.send(new HeadObjectCommand({ Bucket, Key: key }));
        return Bucket;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return undefined;
  }

  /** A presigned GET (DL-05: short-lived) that downloads as an attachment under `name` (DL-01). */
  async downloadUrl(bucket: string, key: string, name: string, contentType: string): Promise<string> {
    return getSignedUrl(
      this.s3,
      new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentDisposition: this.attachment(name), ResponseContentType: contentType }),
      { expiresIn: this.config.DOWNLOAD_URL_EXPIRES_SECONDS },
    );
  }

  /**
   * A presigned POST for a direct browser upload of exactly `size` bytes to the file's staging
   * key, with the file's attributes as required fields. The staging key is not a file: after
   * verification the service copies the bytes to the file key, so the form can never write to a
   * verified file.
   */
  async presignStaging(file: FileObject, size: number): Promise<{ url: string; fields: Record<string, string> }> {
    const attributes = this.attributes(file);
    const fields = {
      'Content-Type': attributes.ContentType,
      'Content-Disposition': attributes.ContentDisposition,
      tagging: `<Tagging><TagSet><Tag><Key>sensitive</Key><Value>${file.sensitive}</Value></Tag></TagSet></Tagging>`,
      'x-amz-server-side-encryption': attributes.ServerSideEncryption,
      'x-amz-meta-owner': file.userId,
      'x-amz-meta-file-id': file.fileId,
    };
    return createPresignedPost(this.s3, {
      Bucket: this.primary,
      Key: stagingKey(file.userId, file.fileId),
      Conditions: [['content-length-range', size, size], ...Object.entries(fields).map(([k, v]) => ({ [k]: v }))],
      Fields: fields,
      Expires: this.config.PRESIGN_EXPIRES_SECONDS,
    });
  }

  /** The staged object as S3 stored it, or undefined when nothing was uploaded. */
  async headStaged(userId: string, fileId: string): Promise<StagedObject | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.primary, Key: stagingKey(userId, fileId) }));
      return {
        size: head.ContentLength ?? 0,
        versionId: head.VersionId,
        etag: head.ETag ?? '',
        contentType: head.ContentType,
        contentDisposition: head.ContentDisposition,
        metadata: head.Metadata ?? {},
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The bytes of exactly the staged version that was examined (pinned by version and ETag). */
  async readStaged(userId: string, fileId: string, staged: StagedObject): Promise<Readable> {
    const out = await this.s3.send(
      new GetObjectCommand({ Bucket: this.primary, Key: stagingKey(userId, fileId), VersionId: staged.versionId, IfMatch: staged.etag }),
    );
    return out.Body as Readable;
  }

  /**
   * Copies the verified staged version to the file key, server-side, with the file's attributes
   * (not the staged object's) and both tags, and has S3 compute the copy's SHA-256. Returns that
   * digest (hex) for comparison with the one computed while verifying.
   */
  async promote(file: FileObject, staged: StagedObject, sha256: string): Promise<string | undefined> {
    const source = `${this.primary}/${stagingKey(file.userId, file.fileId)}${staged.versionId ? `?versionId=${encodeURIComponent(staged.versionId)}` : ''}`;
    const out = await this.s3.send(
      new CopyObjectCommand({
        Bucket: this.primary,
        Key: fileKey(file.userId, file.fileId),
        CopySource: source,
        CopySourceIfMatch: staged.etag,
        MetadataDirective: 'REPLACE',
        TaggingDirective: 'REPLACE',
        Tagging: `sensitive=${file.sensitive}&sha256=${sha256}`,
        ChecksumAlgorithm: 'SHA256',
        ...this.attributes(file),
      }),
    );
    const digest = out.CopyObjectResult?.ChecksumSHA256;
    return digest ? Buffer.from(digest, 'base64').toString('hex') : undefined;
  }

  /** A file object as S3 stored it (primary bucket), tags included. */
  async describeFile(userId: string, fileId: string): Promise<StoredObject> {
    const Key = fileKey(userId, fileId);
    const [head, tags] = await Promise.all([
      this.s3.send(new HeadObjectCommand({ Bucket: this.primary, Key })),
      this.s3.send(new GetObjectTaggingCommand({ Bucket: this.primary, Key })),
    ]);
    return {
      size: head.ContentLength ?? 0,
      contentType: head.ContentType,
      contentDisposition: head.ContentDisposition,
      serverSideEncryption: head.ServerSideEncryption,
      metadata: head.Metadata ?? {},
      tags: Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
    };
  }

  /** What a file object must look like: the attributes it was issued with, and its tags. */
  expected(file: FileObject, size: number, sha256: string): StoredObject {
    const attributes = this.attributes(file);
    return {
      size,
      contentType: attributes.ContentType,
      contentDisposition: attributes.ContentDisposition,
      serverSideEncryption: attributes.ServerSideEncryption,
      metadata: attributes.Metadata,
      tags: { sensitive: String(file.sensitive), sha256 },
    };
  }

  /** Removes a staged upload for good: every version of its staging key (a form may be posted more than once). */
  async deleteStaged(userId: string, fileId: string): Promise<void> {
    const Key = stagingKey(userId, fileId);
    let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page = await this.s3.send(new ListObjectVersionsCommand({ Bucket: this.primary, Prefix: Key, ...markers }));
      const versions = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].filter((v) => v.Key === Key);
      for (const v of versions) await this.s3.send(new DeleteObjectCommand({ Bucket: this.primary, Key, VersionId: v.VersionId }));
      if (!page.IsTruncated) return;
      markers = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
    }
  }

  /** Every object under `prefix` in `bucket`: key and last modification (SDK paginator). */
  async *list(bucket: 'primary' | 'sensitive', prefix: string): AsyncGenerator<{ bucket: string; key: string; lastModified?: Date }> {
    const Bucket = bucket === 'primary' ? this.primary : this.sensitive;
    for await (const page of paginateListObjectsV2({ client: this.s3 }, { Bucket, Prefix: prefix })) {
      for (const obj of page.Contents ?? []) if (obj.Key) yield { bucket: Bucket, key: obj.Key, lastModified: obj.LastModified };
    }
  }

  /** Deletes one object found by `list`. */
  async deleteListed(found: { bucket: string; key: string }): Promise<void> {
    await this.deleteIfPresent(found.bucket, found.key);
  }
}

/** Where a FileWriter writes, and what the object is created with. */
interface FileTarget {
  Bucket: string;
  Key: string;
  Tagging: string;
  /** Read when the object is created (first part, or the single PUT at the end). */
  attributes: () => { ContentType: string; ContentDisposition: string; ServerSideEncryption: 'AES256'; Metadata: Record<string, string> };
}

/**
 * A Writable that stores what it is given as one S3 object (see `ObjectStore.fileWriter`).
 * `settled` resolves once the writer is done for good: the object completed, or, after a failure,
 * the parts in flight finished and the multipart upload was aborted. It never rejects.
 */
export class FileWriter extends Writable {
  readonly settled: Promise<void>;
  private settle!: () => void;
  private buffer: Buffer | undefined;
  private filled = 0;
  private crc = 0;
  private partNumber = 0;
  private uploadId: Promise<string> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  /** The first failure of a part upload, reported by the next write (or the end). */
  private failure: Error | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly buffers: PartBuffers,
    private readonly queueSize: number,
    private readonly target: FileTarget,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    let offset = 0;
    const step = (): void => {
      for (;;) {
        if (this.destroyed) return done();
        if (this.failure) return done(this.failure);
        if (offset === chunk.length) return done();
        if (this.buffer && this.filled === this.buffer.length) {
          // A full part with more bytes after it (a part that is full at the end of the stream is
          // the last one, or the only one: a single PUT). Sent once there is room in the queue.
          if (this.inFlight.size >= this.queueSize) return void this.whenRoom().then(step);
          this.sendPart();
        }
        const buffer = (this.buffer ??= this.buffers.take());
        const n = chunk.copy(buffer, this.filled, offset);
        // CRC32 of the bytes just copied, while they are still in the cache.
        this.crc = crc32(buffer.subarray(this.filled, this.filled + n), this.crc);
        this.filled += n;
        offset += n;
      }
    };
    step();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finish().then(() => done(), done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // A writer destroyed before it finished (the stream failed, the client went away) leaves nothing behind.
    this.cleanUp().then(
      () => done(err),
      (cleanupErr: unknown) => done(err ?? (cleanupErr as Error)),
    );
  }

  private async finish(): Promise<void> {
    if (this.partNumber === 0) {
      // The whole file fits in one part: one PUT, nothing to abort ever.
      const body = this.buffer ? this.buffer.subarray(0, this.filled) : Buffer.alloc(0);
      await this.s3.send(
        withChecksum(
          new PutObjectCommand({
            Bucket: this.target.Bucket,
            Key: this.target.Key,
            Body: body,
            ContentLength: body.length,
            Tagging: this.target.Tagging,
            ChecksumAlgorithm: 'CRC32',
            ChecksumCRC32: crc32Base64(this.crc),
            ...this.target.attributes(),
          }),
        ),
      );
      this.release();
    } else {
      if (this.filled > 0) {
        while (this.inFlight.size >= this.queueSize) await this.whenRoom();
        this.sendPart();
      }
      await Promise.all(this.inFlight);
      if (this.failure) throw this.failure;
      this.parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.target.Bucket,
          Key: this.target.Key,
          UploadId: await (this.uploadId as Promise<string>),
          MultipartUpload: { Parts: this.parts },
        }),
      );
      this.uploadId = undefined;
    }
    this.settle();
  }

  /** Sends the current part (the multipart upload is created with the first one). */
  private sendPart(): void {
    const buffer = this.buffer as Buffer;
    const length = this.filled;
    const checksum = crc32Base64(this.crc);
    const partNumber = (this.partNumber += 1);
    this.buffer = undefined;
    this.filled = 0;
    this.crc = 0;
    if (partNumber > MAX_PARTS) {
      this.buffers.give(buffer);
      this.failure ??= new Error(`a multipart upload has at most ${MAX_PARTS} parts`);
      return;
    }
    this.uploadId ??= this.s3
      .send(
        new CreateMultipartUploadCommand({
          Bucket: this.target.Bucket,
          Key: this.target.Key,
          Tagging: this.target.Tagging,
          ChecksumAlgorithm: 'CRC32',
          ...this.target.attributes(),
        }),
      )
      .then((out) => out.UploadId as string);
    const sent: Promise<void> = this.uploadId
      .then((UploadId) =>
        this.s3.send(
          withChecksum(
            new UploadPartCommand({
              Bucket: this.target.Bucket,
              Key: this.target.Key,
              UploadId,
              PartNumber: partNumber,
              Body: buffer.subarray(0, length),
              ContentLength: length,
              ChecksumAlgorithm: 'CRC32',
              ChecksumCRC32: checksum,
            }),
          ),
        ),
      )
      .then(
        (out) => {
          this.parts.push({ PartNumber: partNumber, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32 ?? checksum });
        },
        (err: unknown) => {
          this.failure ??= err instanceof Error ? err : new Error(String(err));
        },
      )
      .finally(() => {
        this.inFlight.delete(sent);
        this.buffers.give(buffer);
      });
    this.inFlight.add(sent);
  }

  /** Resolves once a part in flight finished (they never reject: a failure is kept in `failure`). */
  private async whenRoom(): Promise<void> {
    await Promise.race(this.inFlight);
  }

  /** Gives back the buffer being filled. */
  private release(): void {
    if (this.buffer) this.buffers.give(this.buffer);
    this.buffer = undefined;
    this.filled = 0;
  }

  /** After a failure: waits for the parts in flight, aborts the multipart upload, settles. */
  private async cleanUp(): Promise<void> {
    try {
      this.release();
      await Promise.all(this.inFlight);
      const uploadId = await this.uploadId?.catch(() => undefined);
      this.uploadId = undefined;
      if (uploadId) await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.target.Bucket, Key: this.target.Key, UploadId: uploadId }));
    } finally {
      this.settle();
    }
  }
}
