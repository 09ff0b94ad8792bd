import {
  AbortMultipartUploadCommand,
  type ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';

/** The largest object one CopyObject request may copy (an S3 limit); larger ones are copied in parts. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
/** S3 allows at most this many parts in a multipart upload. */
const MAX_PARTS = 10_000;
const DEFAULT_PART_BYTES = 512 * 1024 ** 2;
const PART_COPY_CONCURRENCY = 4;

/** How the destination is encrypted: SSE-KMS under one key, or SSE-S3. */
export type Encryption = { type: 'aws:kms'; keyId: string } | { type: 'AES256' };

/** One version of one object. */
export interface ObjectRef {
  Bucket: string;
  Key: string;
  VersionId?: string | undefined;
}

export interface VerifiedCopyRequest {
  source: ObjectRef;
  /** HeadObject of the source version, read with `ChecksumMode: 'ENABLED'` (see `headWithChecksum`). */
  sourceHead: HeadObjectCommandOutput;
  destination: { Bucket: string; Key: string };
  encryption: Encryption;
  /** The SHA-256 of the file's bytes as the upload service recorded it (64 hex digits). */
  sha256: string;
  /** Everything the destination carries, replacing the source's: type, disposition, user metadata, tags. */
  contentType?: string | undefined;
  contentDisposition?: string | undefined;
  metadata: Record<string, string>;
  /** Tags as a URL query string (`a=1&b=2`), as S3's `x-amz-tagging` header takes them. */
  tagging: string;
}

export interface VerifiedCopy {
  /** The destination version the copy created. */
  versionId: string | undefined;
  size: number;
  /** The checksum S3 computed over the destination and that matched: `SHA256`, or a full-object CRC for multipart copies. */
  verifiedWith: ChecksumAlgorithm;
}

/** The copy exists but is not what it should be (size, checksum or key); it has been removed again. */
export class CopyVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyVerificationError';
  }
}

export interface ServerSideCopierOptions {
  /** Above this size the copy is made of UploadPartCopy requests (default: S3's 5 GiB CopyObject limit). */
  multipartAboveBytes?: number;
  /** Part size of multipart copies (default 512 MiB, raised as needed to stay within 10,000 parts). */
  partBytes?: number;
}

/** `bucket/key?versionId=v` URL-encoded segment by segment, as `x-amz-copy-source` takes it. */
export function copySource(ref: ObjectRef): string {
  const key = ref.Key.split('/').map(encodeURIComponent).join('/');
  return `${ref.Bucket}/${key}${ref.VersionId ? `?versionId=${encodeURIComponent(ref.VersionId)}` : ''}`;
}

/** True for a SHA-256 in the form the upload service records it (64 lowercase hex digits). */
export const isSha256Hex = (s: string | undefined): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);

/** The base64 form S3 uses for a SHA-256 given in hex. */
export const sha256Base64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

/** HeadObject of one version with its stored checksums. */
export async function headWithChecksum(s3: S3Client, ref: ObjectRef): Promise<HeadObjectCommandOutput> {
  return s3.send(new HeadObjectCommand({ ...ref, ChecksumMode: 'ENABLED' }));
}

const FULL_OBJECT_CRCS = ['CRC64NVME', 'CRC32C', 'CRC32'] as const;
type FullObjectCrc = (typeof FULL_OBJECT_CRCS)[number];

/** The source's full-object CRC (what a multipart copy can be checked against), if S3 holds one. */
function fullObjectCrc(head: HeadObjectCommandOutput): { algorithm: FullObjectCrc; value: string } | undefined {
  if (head.ChecksumType && head.ChecksumType !== 'FULL_OBJECT') return undefined;
  for (const algorithm of FULL_OBJECT_CRCS) {
    const value = head[`Checksum${algorithm}`];
    // A composite checksum ends in "-<parts>"; only a full-object one describes the bytes themselves.
    if (value && !value.includes('-')) return { algorithm, value };
  }
  return undefined;
}

/**
 * Server-side copies whose result is checked before anyone relies on it (FU-15): no byte of the
 * object passes through this process. Up to `multipartAboveBytes` one CopyObject in which S3
 * computes a SHA-256 of the new object, compared with the recorded one; above it, UploadPartCopy
 * with the source's own full-object CRC (S3 keeps one for every object it stores), compared on
 * completion. Then a HeadObject of the new version checks size, encryption and the KMS key. A copy
 * that fails a check is deleted again and a CopyVerificationError thrown.
 */
export class ServerSideCopier {
  private readonly keyArns = new Map<string, Promise<string | undefined>>();
  private readonly multipartAbove: number;
  private readonly partBytes: number;

  constructor(
    private readonly s3: S3Client,
    private readonly kms: KMSClient,
    opts: ServerSideCopierOptions = {},
  ) {
    this.multipartAbove = opts.multipartAboveBytes ?? MAX_SINGLE_COPY_BYTES;
    this.partBytes = opts.partBytes ?? DEFAULT_PART_BYTES;
  }

  async copy(req: VerifiedCopyRequest): Promise<VerifiedCopy> {
    const size = req.sourceHead.ContentLength;
    if (size === undefined) throw new Error(`the size of ${req.source.Key} is unknown`);
    const copied = size > this.multipartAbove ? await this.copyInParts(req, size) : await this.copyWhole(req);
    try {
      await this.verify(req, copied, size);
    } catch (err) {
      await this.s3
        .send(new DeleteObjectCommand({ ...req.destination, VersionId: copied.versionId }))
        .catch(() => undefined);
      throw err;
    }
    return { versionId: copied.versionId, size, verifiedWith: copied.algorithm };
  }

  /** True when `actual` (as S3 reports it: a key ARN) names the configured key (an ARN, id or alias). */
  async isKey(actual: string | undefined, configured: string): Promise<boolean> {
    if (!actual) return false;
    if (actual === configured) return true;
    let arn = this.keyArns.get(configured);
    if (!arn) {
      arn = this.kms.send(new DescribeKeyCommand({ KeyId: configured })).then(
        (out) => out.KeyMetadata?.Arn,
        (err: unknown) => {
          this.keyArns.delete(configured);
          throw err;
        },
      );
      this.keyArns.set(configured, arn);
    }
    const resolved = await arn;
    return resolved !== undefined && (actual === resolved || resolved.endsWith(`:key/${actual}`));
  }

  private target(req: VerifiedCopyRequest) {
    return {
      ...req.destination,
      ...(req.contentType ? { ContentType: req.contentType } : {}),
      ...(req.contentDisposition ? { ContentDisposition: req.contentDisposition } : {}),
      Metadata: req.metadata,
      Tagging: req.tagging,
      ...(req.encryption.type === 'aws:kms'
        ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: req.encryption.keyId, BucketKeyEnabled: true }
        : { ServerSideEncryption: 'AES256' as const }),
    };
  }

  private async copyWhole(req: VerifiedCopyRequest): Promise<{ versionId: string | undefined; algorithm: ChecksumAlgorithm; checksum?: string | undefined }> {
    const out = await this.s3.send(
      new CopyObjectCommand({
        ...this.target(req),
        CopySource: copySource(req.source),
        MetadataDirective: 'REPLACE',
        TaggingDirective: 'REPLACE',
        ChecksumAlgorithm: 'SHA256',
      }),
    );
    return { versionId: out.VersionId, algorithm: 'SHA256', checksum: out.CopyObjectResult?.ChecksumSHA256 };
  }

  private async copyInParts(req: VerifiedCopyRequest, size: number): Promise<{ versionId: string | undefined; algorithm: ChecksumAlgorithm }> {
    const crc = fullObjectCrc(req.sourceHead);
    if (!crc) {
      throw new CopyVerificationError(
        `${req.source.Key} is larger than ${this.multipartAbove} bytes and S3 holds no full-object checksum for it: a multipart copy could not be verified`,
      );
    }
    const partBytes = Math.max(this.partBytes, Math.ceil(size / MAX_PARTS));
    const created = await this.s3.send(
      new CreateMultipartUploadCommand({ ...this.target(req), ChecksumAlgorithm: crc.algorithm, ChecksumType: 'FULL_OBJECT' }),
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error('S3 did not return an upload id');
    try {
      const ranges: { PartNumber: number; start: number; end: number }[] = [];
      for (let start = 0, n = 1; start < size; start += partBytes, n += 1) {
        ranges.push({ PartNumber: n, start, end: Math.min(size, start + partBytes) - 1 });
      }
      const parts: CompletedPart[] = new Array(ranges.length);
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < ranges.length; i = next++) {
          const r = ranges[i] as (typeof ranges)[number];
          const out = await this.s3.send(
            new UploadPartCopyCommand({
              ...req.destination,
              UploadId: uploadId,
              PartNumber: r.PartNumber,
              CopySource: copySource(req.source),
              CopySourceRange: `bytes=${r.start}-${r.end}`,
            }),
          );
          const result = out.CopyPartResult;
          parts[i] = {
            PartNumber: r.PartNumber,
            ETag: result?.ETag,
            ...(result?.[`Checksum${crc.algorithm}`] ? { [`Checksum${crc.algorithm}`]: result[`Checksum${crc.algorithm}`] } : {}),
          };
        }
      };
      await Promise.all(Array.from({ length: Math.min(PART_COPY_CONCURRENCY, ranges.length) }, worker));
      const done = await this.s3.send(
        new CompleteMultipartUploadCommand({
          ...req.destination,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          ChecksumType: 'FULL_OBJECT',
          // S3 refuses to complete when the parts do not add up to the source's checksum.
          [`Checksum${crc.algorithm}`]: crc.value,
        }),
      );
      return { versionId: done.VersionId, algorithm: crc.algorithm };
    } catch (err) {
      await this.s3.send(new AbortMultipartUploadCommand({ ...req.destination, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
  }

  private async verify(
    req: VerifiedCopyRequest,
    copied: { versionId: string | undefined; algorithm: ChecksumAlgorithm; checksum?: string | undefined },
    size: number,
  ): Promise<void> {
    const key = req.destination.Key;
    const expected = copied.algorithm === 'SHA256' ? sha256Base64(req.sha256) : fullObjectCrc(req.sourceHead)?.value;
    if (copied.checksum !== undefined && copied.checksum !== expected) {
      throw new CopyVerificationError(`the copy of ${key} has SHA-256 ${copied.checksum}, not the recorded ${expected}`);
    }
    const head = await headWithChecksum(this.s3, { ...req.destination, VersionId: copied.versionId });
    if (head.ContentLength !== size) {
      throw new CopyVerificationError(`the copy of ${key} has ${head.ContentLength} bytes, not ${size}`);
    }
    const stored = head[`Checksum${copied.algorithm}` as `Checksum${FullObjectCrc | 'SHA256'}`];
    if (stored !== undefined && stored !== expected) {
      throw new CopyVerificationError(`the copy of ${key} has ${copied.algorithm} ${stored}, not ${expected}`);
    }
    if (stored === undefined && copied.checksum === undefined) {
      throw new CopyVerificationError(`S3 reported no ${copied.algorithm} checksum for the copy of ${key}`);
    }
    if (req.encryption.type === 'AES256') {
      if (head.ServerSideEncryption !== 'AES256') throw new CopyVerificationError(`the copy of ${key} is not encrypted with SSE-S3`);
      return;
    }
    if (head.ServerSideEncryption !== 'aws:kms' || !(await this.isKey(head.SSEKMSKeyId, req.encryption.keyId))) {
      throw new CopyVerificationError(`the copy of ${key} is not encrypted under ${req.encryption.keyId} (S3 reports ${head.SSEKMSKeyId ?? 'no key'})`);
    }
  }
}
