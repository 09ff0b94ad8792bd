import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { type FileRecord, type FileRepository, fileKey } from '@scs/common/files';
import type { AllowedTypes } from '../content/file-types';
import { uuidv7 } from './ids';
import { Inspector } from '../content/inspector';
import type { FileObject, ObjectStore } from '../storage/object-store';
import type { Quota } from './quota';
import type { Logger } from '@scs/common';

/** The file part of an upload form. */
export interface IncomingFile {
  /** The name the client sent (data only, FU-07). */
  filename: string;
  /** The file's bytes; `truncated` and the `'limit'` event come from the multipart parser's size limit. */
  stream: Readable & { truncated?: boolean };
  sensitive: boolean;
  /**
   * What an error of `stream` means: the domain error when the form's parser raised it (a
   * malformed or cut body: 400 BAD_MULTIPART, 400 REQUEST_ABORTED, 413 FILE_TOO_LARGE), otherwise
   * `err` itself.
   */
  failure(err: unknown): unknown;
}

/**
 * An upload request as the service sees it: the route reads the form, the service decides when.
 * Errors of the form (malformed multipart, unexpected parts) are thrown by `file` and `end` as
 * domain errors; those of the file's bytes are turned into them by `IncomingFile.failure`.
 */
export interface UploadForm {
  /** Bytes the request declares (Content-Length), when known. */
  declaredBytes?: number;
  /** Reads the form up to its file part. */
  file(): Promise<IncomingFile>;
  /** Reads the rest of the form after the file; throws when anything else is in it. */
  end(): Promise<void>;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Room for the multipart framing around the file in a request's Content-Length. */
const MULTIPART_OVERHEAD = 64 * 1024;

/**
 * Streamed uploads (FU-01, FU-03, FU-05, FU-14, FU-15): reserve quota, stream the file through one
 * pipeline (the request's file stream -> the inspector -> the S3 multipart upload), settle, and
 * undo everything when any step fails, all in one call.
 */
export class Uploads {
  constructor(
    private readonly store: ObjectStore,
    private readonly files: FileRepository,
    private readonly quota: Quota,
    private readonly types: AllowedTypes,
    private readonly log: Pick<Logger, 'warn' | 'error'>,
  ) {}

  /**
   * Stores the form's file: the quota is reserved before any byte is read (from the declared
   * length), the type is decided from the content, the SHA-256 and size are computed on the way,
   * nothing is buffered whole or written to disk (the part writer's pooled buffers), and the
   * record is written (with the reservation's settlement and the usage, in one transaction: two
   * DynamoDB requests per stored upload, the reservation and this one, plus one lease renewal per
   * third of RESERVATION_LEASE_SECONDS the upload lasts) only after S3 completed the object. The
   * reservation is renewed while the part writer waits for a free buffer or for S3 too. The upload is aborted as soon as the file
   * passes the limit (the parser's `'limit'`) or the client goes away; any failure leaves no
   * object, no open multipart upload, no record and no reservation.
   */
  async upload(userId: string, form: UploadForm): Promise<FileRecord> {
    const declared = form.declaredBytes;
    const held = await this.quota.reserve(userId, declared ?? this.quota.maxBytes, declared === undefined ? 0 : declared - MULTIPART_OVERHEAD);
    const reserved = held.bytes;
    let created: FileObject | undefined;
    let settled = false;
    try {
      const file = await form.file();
      const { name, type } = this.types.resolve(file.filename);
      const object: FileObject = { userId, fileId: uuidv7(), name, contentType: type.mediaType, sensitive: file.sensitive };

      const tooLarge = new AbortController();
      if (file.stream.truncated) tooLarge.abort(this.quota.tooLarge());
      else file.stream.once('limit', () => tooLarge.abort(this.quota.tooLarge()));
      const signal = AbortSignal.any([form.signal, tooLarge.signal]);
      const inspector = new Inspector({
        name,
        type,
        limit: reserved,
        overLimit: (size) => (size > this.quota.maxBytes ? this.quota.tooLarge() : this.quota.exceeded()),
      });
      // pipeline() hands its last stage the inspector itself (a Readable), and may settle on an
      // error before that stage did: the S3 upload's own promise says when its clean-up is over.
      let writing: Promise<void> | undefined;
      const toS3 = (source: AsyncIterable<Buffer>) =>
        (writing = this.store.writeFile(object, source as Readable, { contentType: () => inspector.contentType, signal, log: this.log }));
      try {
        await pipeline(file.stream, inspector, toS3, { signal });
      } catch (err) {
        await writing?.catch(() => undefined);
        throw signal.aborted ? signal.reason : file.failure(err);
      }
      created = object;
      const verdict = inspector.verdict as NonNullable<Inspector['verdict']>;
      await form.end();

      await this.store.tagDigest(object, verdict.sha256);
      const record: FileRecord = {
        userId,
        fileId: object.fileId,
        name,
        size: verdict.size,
        contentType: verdict.contentType,
        sha256: verdict.sha256,
        sensitive: file.sensitive,
        status: 'active',
        key: fileKey(userId, object.fileId),
        createdAt: new Date().toISOString(),
      };
      const { id, bytes } = held;
      settled = await this.files.createActive(record, { userId, id, bytes });
      if (!settled) throw new Error(`a record for ${record.key} already exists`);
      return record;
    } catch (err) {
      // No record may point at nothing, no object may stay without a record, no reservation may leak.
      if (created) {
        const { fileId, sensitive } = created;
        await this.store.discardFile(fileKey(userId, fileId), sensitive, this.log);
      }
      if (!settled) await this.quota.release(held);
      throw err;
    } finally {
      held.stop();
    }
  }
}
