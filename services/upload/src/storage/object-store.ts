import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  ListPartsCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BackgroundRetries, fileTags, isNotFound, type Logger, tagSet, taggingQuery, taggingXml, tagsOf } from '@scs/common';
import { fileKey, stagingKey } from '@scs/common/files';
import { paginateObjectVersions } from '@scs/common/s3-versions';
import type { Readable } from 'node:stream';
import type { UploadConfig } from '../config';
import { PartBuffers, PartWriter } from './part-writer';
import { unsignedPayloadWithChecksum } from './unsigned-payload';

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

/** One part of a resumable upload as S3 holds it. */
export interface HeldPart {
  partNumber: number;
  size: number;
  etag: string;
  /** The part's SHA-256 (base64) as S3 verified it. */
  checksum?: string;
}

/** A presigned part URL and the headers the browser must send with its `PUT`. */
export interface PresignedPart {
  url: string;
  headers: Record<string, string>;
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

/**
 * Every S3 call of the upload service. File objects are created in one request with their tags,
 * metadata, disposition and server-side encryption (SSE-S3 in the primary bucket); the mover may
 * later move a sensitive file to the sensitive bucket under the same key.
 */
export class ObjectStore {
  private readonly primary: string;
  private readonly sensitive: string;
  /** The part buffers every streamed upload of the process shares. */
  private readonly buffers: PartBuffers;

  /**
   * The store, with the `content-disposition` package loaded (an ES module, so imported once here).
   * The client is given the `unsignedPayloadWithChecksum` plugin: bodies that carry a checksum S3
   * verifies are not hashed a second time for the signature.
   */
  static async create(s3: S3Client, config: UploadConfig): Promise<ObjectStore> {
    const { create } = await import('content-disposition');
    s3.middlewareStack.use(unsignedPayloadWithChecksum);
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
    // One upload's working set (its queue and the part being filled) is resident from the start.
    this.buffers = new PartBuffers(config.UPLOAD_PART_BYTES, config.UPLOAD_PART_BUFFERS, Math.min(config.UPLOAD_QUEUE_SIZE + 1, config.UPLOAD_PART_BUFFERS));
  }

  /** Clean-ups of failed uploads being retried while S3 is unreachable. */
  private readonly retries = new BackgroundRetries();

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
   * Writes an upload's stream into `users/{userId}/{fileId}` with the service's own part writer
   * (`PartWriter`): a file of at most one part is one PutObject when the stream ends, a larger one
   * a multipart upload of UPLOAD_PART_BYTES parts, up to UPLOAD_QUEUE_SIZE of them in flight, each
   * assembled in a buffer of the process's pool of UPLOAD_PART_BUFFERS (the stream is read only
   * while there is room in the queue and a free buffer: back-pressure to the client). The object is
   * created with its tags (`Tagging` in the creating request: tagging afterwards would race the
   * mover), metadata, disposition and encryption, and with the Content-Type `contentType()` gives at
   * that moment (with the first part, or with the single PUT at the end of a file of one part; by
   * then the type has seen at least the first bytes, and a small text file all of its bytes, so the
   * object's Content-Type carries the charset found).
   *
   * Every part (and the single PUT) carries the CRC32 of its bytes (native `zlib.crc32`, taken as
   * each chunk is copied into the part) that S3 verifies before it accepts them (400 BadDigest
   * otherwise); the body is not hashed again for the signature (`unsignedPayloadWithChecksum`).
   *
   * `signal` (the client went away, the multipart parser's size limit) stops the upload. Resolves
   * once S3 completed the object. Rejects only once the upload is over for good: the requests in
   * flight finished, the multipart upload was aborted, and an object that S3 completed after all
   * (an abort that came too late, a completion whose answer was lost) was deleted. A clean-up that
   * fails because S3 is unreachable is retried in the background (`BackgroundRetries`); one that
   * fails for good is logged and left to the sweep and the buckets' lifecycle rule.
   */
  async writeFile(
    file: FileObject,
    body: Readable,
    opts: { contentType: () => string | undefined; signal: AbortSignal; log: Pick<Logger, 'warn' | 'error'> },
  ): Promise<void> {
    const Key = fileKey(file.userId, file.fileId);
    const writer = new PartWriter(
      this.s3,
      this.buffers,
      {
        Bucket: this.primary,
        Key,
        Tagging: taggingQuery(fileTags({ sensitive: file.sensitive })),
        attributes: () => ({ ...this.attributes(file), ContentType: opts.contentType() ?? file.contentType }),
      },
      this.config.UPLOAD_QUEUE_SIZE,
    );
    try {
      await writer.write(body, opts.signal);
    } catch (err) {
      // Nothing of the writer is in flight any more. A creating request (the single PUT, the
      // completion) whose answer was lost may still have stored the object, so that is looked for
      // too; through an outage, in the background.
      const { uploadId, mayHaveCreated } = writer;
      await this.retries.run(opts.log, 'removing what a failed upload left in S3', { key: Key }, async () => {
        if (mayHaveCreated) await this.deleteEveryVersion(this.primary, Key);
        if (uploadId) await this.abortMultipart(Key, uploadId);
      });
      throw err;
    }
  }

  /**
   * Adds the SHA-256 tag once the bytes are complete (PutObjectTagging: no new version, no new
   * event). A sensitive file may already be in the sensitive bucket.
   */
  async tagDigest(file: FileObject, sha256: string): Promise<void> {
    const Key = fileKey(file.userId, file.fileId);
    const Tagging = { TagSet: tagSet(fileTags({ sensitive: file.sensitive, sha256 })) };
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
   * Deletes every version of what a failed upload left under `key` (its own key: no file has
   * it), in the sensitive bucket too for a sensitive file, retried in the background while S3 is
   * unreachable; never throws (failures are logged).
   */
  async discardFile(key: string, sensitive: boolean, log: Pick<Logger, 'warn' | 'error'>): Promise<void> {
    const buckets = sensitive ? [this.primary, this.sensitive] : [this.primary];
    await this.retries.run(log, 'removing the object of a failed upload', { key }, () => Promise.all(buckets.map((b) => this.deleteEveryVersion(b, key))));
  }

  /** Waits up to `withinMs` for clean-ups being retried in the background, then gives up the rest. */
  async settled(withinMs: number): Promise<void> {
    await this.retries.settled(withinMs);
  }

  /** Aborts a multipart upload; one that is gone already (an earlier attempt landed) is fine. */
  private async abortMultipart(Key: string, UploadId: string): Promise<void> {
    try {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.primary, Key, UploadId }));
    } catch (err) {
      if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
    }
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
      tagging: taggingXml(fileTags({ sensitive: file.sensitive })),
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
        Tagging: taggingQuery(fileTags({ sensitive: file.sensitive, sha256 })),
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
      tags: tagsOf(tags.TagSet),
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
      tags: fileTags({ sensitive: file.sensitive, sha256 }),
    };
  }

  /** Removes a staged upload for good: every version of its staging key (a form may be posted more than once). */
  async deleteStaged(userId: string, fileId: string): Promise<void> {
    await this.deleteEveryVersion(this.primary, stagingKey(userId, fileId));
  }

  /** Deletes every version and delete marker of one key: nothing of it stays in a versioned bucket. */
  private async deleteEveryVersion(Bucket: string, Key: string): Promise<void> {
    for await (const page of paginateObjectVersions(this.s3, { Bucket, Prefix: Key })) {
      const versions = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].filter((v) => v.Key === Key);
      for (const v of versions) await this.s3.send(new DeleteObjectCommand({ Bucket, Key, VersionId: v.VersionId }));
    }
  }


  /**
   * Starts a resumable upload's multipart upload at the file key, with everything a streamed
   * upload's object is created with (the `sensitive` tag in the creating request, SSE-S3, owner
   * metadata, Content-Type and Content-Disposition) and SHA-256 part checksums: every part is
   * then refused by S3 unless it carries the SHA-256 of its body. Returns the upload id.
   */
  async startMultipart(file: FileObject): Promise<string> {
    const out = await this.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: this.primary,
        Key: fileKey(file.userId, file.fileId),
        Tagging: taggingQuery(fileTags({ sensitive: file.sensitive })),
        ChecksumAlgorithm: 'SHA256',
        ...this.attributes(file),
      }),
    );
    if (!out.UploadId) throw new Error('S3 started a multipart upload without an upload id');
    return out.UploadId;
  }

  /**
   * A presigned `PUT` of one part, valid for PRESIGN_EXPIRES_SECONDS (or less: it dies with the
   * temporary credentials that signed it), signed for the part's SHA-256 (`checksum`, base64):
   * `x-amz-checksum-sha256` is a signed header the browser must send as given (`headers`), so a
   * request without it fails the signature, and S3 refuses a body whose SHA-256 differs (BadDigest).
   */
  async presignPart(key: string, uploadId: string, partNumber: number, checksum: string): Promise<PresignedPart> {
    const header = 'x-amz-checksum-sha256';
    const url = await getSignedUrl(
      this.s3,
      new UploadPartCommand({ Bucket: this.primary, Key: key, UploadId: uploadId, PartNumber: partNumber, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: checksum }),
      { expiresIn: this.config.PRESIGN_EXPIRES_SECONDS, signableHeaders: new Set([header]), unhoistableHeaders: new Set([header]) },
    );
    return { url, headers: { [header]: checksum } };
  }

  /**
   * Every part S3 holds of a multipart upload, in part order (ListParts, page by page); undefined
   * when the upload is gone (completed or aborted). Pages follow `NextPartNumberMarker` only while
   * it moves forward (the emulator's may not).
   */
  async listParts(key: string, uploadId: string): Promise<HeldPart[] | undefined> {
    const parts = new Map<number, HeldPart>();
    let marker: string | undefined;
    try {
      for (;;) {
        const page = await this.s3.send(new ListPartsCommand({ Bucket: this.primary, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
        for (const p of page.Parts ?? []) {
          const partNumber = p.PartNumber ?? 0;
          parts.set(partNumber, { partNumber, size: p.Size ?? 0, etag: p.ETag ?? '', ...(p.ChecksumSHA256 ? { checksum: p.ChecksumSHA256 } : {}) });
        }
        const next = page.NextPartNumberMarker;
        if (!page.IsTruncated || !next || Number(next) <= Number(marker ?? 0)) break;
        marker = next;
      }
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchUpload') return undefined;
      throw err;
    }
    return [...parts.values()].sort((a, b) => a.partNumber - b.partNumber);
  }

  /** Completes a multipart upload from the parts S3 holds, each with the SHA-256 S3 verified. Returns the object's version. */
  async completeMultipart(key: string, uploadId: string, parts: HeldPart[]): Promise<string | undefined> {
    const out = await this.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.primary,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, ...(p.checksum ? { ChecksumSHA256: p.checksum } : {}) })) },
      }),
    );
    return out.VersionId;
  }

  /** Aborts a resumable upload's multipart upload (gone already is fine). */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.abortMultipart(key, uploadId);
  }

  /** Bytes `start` to `end` (inclusive) of one version of a file object in the primary bucket (a ranged GET). */
  async readRange(key: string, versionId: string | undefined, start: number, end: number): Promise<Buffer> {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.primary, Key: key, VersionId: versionId, Range: `bytes=${start}-${end}` }));
    return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  }

  /**
   * The SHA-256 (hex) of one version of a file object of at most 5 GiB, computed by S3 and not by
   * this process: a server-side copy to the file's staging key (never a file) with a SHA-256
   * checksum, removed again at once. Undefined when S3 reported no checksum.
   */
  async sha256OfFile(userId: string, fileId: string, versionId: string | undefined): Promise<string | undefined> {
    const source = `${this.primary}/${fileKey(userId, fileId)}${versionId ? `?versionId=${encodeURIComponent(versionId)}` : ''}`;
    try {
      const out = await this.s3.send(
        new CopyObjectCommand({ Bucket: this.primary, Key: stagingKey(userId, fileId), CopySource: source, ChecksumAlgorithm: 'SHA256', ServerSideEncryption: 'AES256' }),
      );
      const digest = out.CopyObjectResult?.ChecksumSHA256;
      return digest ? Buffer.from(digest, 'base64').toString('hex') : undefined;
    } finally {
      await this.deleteStaged(userId, fileId);
    }
  }

  /** Deletes every version of a file object in the primary bucket (a refused resumable upload: no version of it may stay). */
  async deleteFileVersions(key: string): Promise<void> {
    await this.deleteEveryVersion(this.primary, key);
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
