import {
  AbortMultipartUploadCommand,
  type ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  type CompleteMultipartUploadCommandInput,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectAttributesCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { createHash } from 'node:crypto';

/** The largest object one CopyObject request may copy (an S3 limit); larger ones are copied in parts. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
/** S3 allows at most this many parts in a multipart upload. */
const MAX_PARTS = 10_000;
/** Parts per GetObjectAttributes page (S3's own maximum). */
const PARTS_PER_PAGE = 1_000;
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
  /** Bytes copied. */
  size: number;
  /**
   * The checksum S3 computed over the destination and that matched: `SHA256` (a single copy: the
   * recorded SHA-256 of the file; or, with `checksumType` COMPOSITE, the SHA-256 of every part and
   * the composite of the source), or a full-object CRC (a copy in parts of a source that has one).
   */
  verifiedWith: ChecksumAlgorithm;
  /** FULL_OBJECT: a checksum of all the bytes; COMPOSITE: a checksum of each part, same parts as the source. */
  checksumType: 'FULL_OBJECT' | 'COMPOSITE';
}

/** The copy exists but is not what it should be (size, checksum or key); it has been removed again. */
export class CopyVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyVerificationError';
  }
}

export interface ServerSideCopierOptions {
  /**
   * Above this size, in bytes, the copy is made of UploadPartCopy requests (default and maximum:
   * S3's 5 GiB CopyObject limit; the COPY_IN_PARTS_ABOVE_BYTES setting lowers it).
   */
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

/** Algorithms whose composite checksum this module can check: S3 composes it as the digest of the parts' digests. */
const COMPOSITE_DIGESTS = { SHA256: 'sha256' } as const;
type CompositeAlgorithm = keyof typeof COMPOSITE_DIGESTS;

/** A composite checksum as S3 reports it for an object completed from parts: `<base64 digest>-<parts>`. */
interface CompositeChecksum {
  algorithm: CompositeAlgorithm;
  /** As HeadObject reports it, with the `-<parts>` suffix. */
  value: string;
  /** The digest of the parts' digests (base64). */
  digest: string;
  parts: number;
}

/** The source's composite checksum (uploaded in parts with SHA-256 part checksums), if S3 holds one. */
function compositeChecksum(head: HeadObjectCommandOutput): CompositeChecksum | undefined {
  if (head.ChecksumType && head.ChecksumType !== 'COMPOSITE') return undefined;
  for (const algorithm of Object.keys(COMPOSITE_DIGESTS) as CompositeAlgorithm[]) {
    const value = head[`Checksum${algorithm}`];
    const match = value ? /^([A-Za-z0-9+/]+={0,2})-(\d+)$/.exec(value) : null;
    if (value && match) return { algorithm, value, digest: match[1] as string, parts: Number(match[2]) };
  }
  return undefined;
}

/** One part of the source as S3 lists it, with the byte range it covers. */
interface SourcePart {
  /** The destination's part number (1, 2, ... in the source's part order). */
  PartNumber: number;
  /** First and last byte (inclusive) of the part within the object. */
  start: number;
  end: number;
  /** The part's checksum as S3 verified it at upload (base64). */
  checksum: string;
}

/** What a copy produced and the checksum its destination must carry. */
interface Copied {
  versionId: string | undefined;
  algorithm: ChecksumAlgorithm;
  checksumType: 'FULL_OBJECT' | 'COMPOSITE';
  /** The checksum the destination must report (HeadObject with checksum mode), as S3 reports it. */
  expected: string;
  /** The checksum the copy request itself returned, if any. */
  checksum?: string | undefined;
}

/**
 * Server-side copies whose result is checked before anyone relies on it (FU-15): no byte of the
 * object passes through this process. Up to `multipartAboveBytes` one CopyObject in which S3
 * computes a SHA-256 of the new object, compared with the recorded one. Above it, UploadPartCopy:
 * - a source with a full-object CRC: parts of `partBytes`, the destination's full-object CRC
 *   compared with the source's on completion;
 * - a source uploaded in parts with SHA-256 part checksums (a composite SHA-256, `<base64>-<n>`):
 *   the source's parts as S3 lists them (GetObjectAttributes ObjectParts, checked against the
 *   composite), copied with the same boundaries into an upload with SHA-256 part checksums; each
 *   part's SHA-256, computed by S3 over the copied bytes, compared with the source part's, and the
 *   destination's composite with the source's.
 * Then a HeadObject of the new version checks size, checksum, encryption and the KMS key. A copy
 * that fails a check is deleted again (an unfinished one aborted) and a CopyVerificationError
 * thrown; a source with neither checksum above the limit is refused with one before anything is
 * written.
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

  /**
   * Copies one source version to `req.destination` and verifies the copy (see the class).
   * Resolves with the destination version, its size in bytes and the check that held; rejects with
   * a CopyVerificationError when a check fails (the copy removed), or S3's own error.
   */
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
    return { versionId: copied.versionId, size, verifiedWith: copied.algorithm, checksumType: copied.checksumType };
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

  private async copyWhole(req: VerifiedCopyRequest): Promise<Copied> {
    const out = await this.s3.send(
      new CopyObjectCommand({
        ...this.target(req),
        CopySource: copySource(req.source),
        MetadataDirective: 'REPLACE',
        TaggingDirective: 'REPLACE',
        ChecksumAlgorithm: 'SHA256',
      }),
    );
    return {
      versionId: out.VersionId,
      algorithm: 'SHA256',
      checksumType: 'FULL_OBJECT',
      expected: sha256Base64(req.sha256),
      checksum: out.CopyObjectResult?.ChecksumSHA256,
    };
  }

  private async copyInParts(req: VerifiedCopyRequest, size: number): Promise<Copied> {
    const crc = fullObjectCrc(req.sourceHead);
    if (crc) {
      const partBytes = Math.max(this.partBytes, Math.ceil(size / MAX_PARTS));
      const ranges: { PartNumber: number; start: number; end: number }[] = [];
      for (let start = 0, n = 1; start < size; start += partBytes, n += 1) {
        ranges.push({ PartNumber: n, start, end: Math.min(size, start + partBytes) - 1 });
      }
      const versionId = await this.copyParts(req, crc.algorithm, 'FULL_OBJECT', ranges, (parts) => ({
        ChecksumType: 'FULL_OBJECT',
        // S3 refuses to complete when the parts do not add up to the source's checksum.
        [`Checksum${crc.algorithm}`]: crc.value,
        MultipartUpload: { Parts: parts },
      }));
      return { versionId, algorithm: crc.algorithm, checksumType: 'FULL_OBJECT', expected: crc.value };
    }
    const composite = compositeChecksum(req.sourceHead);
    if (composite) {
      const parts = await this.sourceParts(req, size, composite);
      const versionId = await this.copyParts(req, composite.algorithm, 'COMPOSITE', parts, (done) => ({ MultipartUpload: { Parts: done } }));
      return { versionId, algorithm: composite.algorithm, checksumType: 'COMPOSITE', expected: composite.value };
    }
    throw new CopyVerificationError(
      `${req.source.Key} is larger than ${this.multipartAbove} bytes and S3 holds neither a full-object nor a composite SHA-256 checksum for it: a multipart copy could not be verified`,
    );
  }

  /**
   * The source's parts as S3 lists them (GetObjectAttributes ObjectParts, page by page, of the
   * pinned version), each with its byte range and checksum. The list must be the one the source's
   * composite checksum was made of: as many parts, sizes adding up to `size`, and the digest of the
   * part checksums equal to the composite; otherwise a CopyVerificationError (nothing written yet).
   */
  private async sourceParts(req: VerifiedCopyRequest, size: number, composite: CompositeChecksum): Promise<SourcePart[]> {
    const key = req.source.Key;
    const parts: SourcePart[] = [];
    let offset = 0;
    let marker: string | undefined;
    for (;;) {
      const page = await this.s3.send(
        new GetObjectAttributesCommand({ ...req.source, ObjectAttributes: ['ObjectParts'], MaxParts: PARTS_PER_PAGE, PartNumberMarker: marker }),
      );
      const listed = page.ObjectParts;
      if (listed?.TotalPartsCount !== composite.parts) {
        throw new CopyVerificationError(`S3 lists ${listed?.TotalPartsCount ?? 'no'} parts of ${key}, its checksum ${composite.value} says ${composite.parts}`);
      }
      for (const p of listed.Parts ?? []) {
        const checksum = p[`Checksum${composite.algorithm}`];
        if (!checksum || !p.Size) throw new CopyVerificationError(`S3 lists part ${p.PartNumber} of ${key} without its size or ${composite.algorithm} checksum`);
        parts.push({ PartNumber: parts.length + 1, start: offset, end: offset + p.Size - 1, checksum });
        offset += p.Size;
      }
      const next = listed.NextPartNumberMarker;
      if (!listed.IsTruncated || !next || Number(next) <= Number(marker ?? 0)) break;
      marker = next;
    }
    if (parts.length !== composite.parts || offset !== size) {
      throw new CopyVerificationError(`S3 lists ${parts.length} parts of ${key} holding ${offset} bytes, not ${composite.parts} parts of ${size} bytes`);
    }
    const digest = createHash(COMPOSITE_DIGESTS[composite.algorithm]);
    for (const p of parts) digest.update(Buffer.from(p.checksum, 'base64'));
    if (digest.digest('base64') !== composite.digest) {
      throw new CopyVerificationError(`the part checksums S3 lists for ${key} do not make up its checksum ${composite.value}`);
    }
    return parts;
  }

  /**
   * One multipart upload at the destination (with `algorithm` part checksums of `checksumType`),
   * one UploadPartCopy per range, `PART_COPY_CONCURRENCY` at a time; a range that carries a
   * `checksum` must come back from S3 with that checksum of the copied bytes, else a
   * CopyVerificationError. `completion` adds what CompleteMultipartUpload checks. The upload is
   * aborted on any failure. Resolves with the version created.
   */
  private async copyParts(
    req: VerifiedCopyRequest,
    algorithm: ChecksumAlgorithm,
    checksumType: 'FULL_OBJECT' | 'COMPOSITE',
    ranges: readonly { PartNumber: number; start: number; end: number; checksum?: string }[],
    completion: (parts: CompletedPart[]) => Omit<CompleteMultipartUploadCommandInput, 'Bucket' | 'Key' | 'UploadId'>,
  ): Promise<string | undefined> {
    const created = await this.s3.send(new CreateMultipartUploadCommand({ ...this.target(req), ChecksumAlgorithm: algorithm, ChecksumType: checksumType }));
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error('S3 did not return an upload id');
    const field = `Checksum${algorithm}` as const;
    try {
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
          const copied = result?.[field];
          if (r.checksum !== undefined && copied !== r.checksum) {
            throw new CopyVerificationError(
              `part ${r.PartNumber} of the copy of ${req.source.Key} has ${algorithm} ${copied ?? '(none reported)'}, the source part ${r.checksum}`,
            );
          }
          parts[i] = { PartNumber: r.PartNumber, ETag: result?.ETag, ...(copied ? { [field]: copied } : {}) };
        }
      };
      await Promise.all(Array.from({ length: Math.min(PART_COPY_CONCURRENCY, ranges.length) }, worker));
      const done = await this.s3.send(new CompleteMultipartUploadCommand({ ...req.destination, UploadId: uploadId, ...completion(parts) }));
      return done.VersionId;
    } catch (err) {
      await this.s3.send(new AbortMultipartUploadCommand({ ...req.destination, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
  }

  private async verify(req: VerifiedCopyRequest, copied: Copied, size: number): Promise<void> {
    const key = req.destination.Key;
    const expected = copied.expected;
    if (copied.checksum !== undefined && copied.checksum !== expected) {
      throw new CopyVerificationError(`the copy of ${key} has ${copied.algorithm} ${copied.checksum}, not the expected ${expected}`);
    }
    const head = await headWithChecksum(this.s3, { ...req.destination, VersionId: copied.versionId });
    if (head.ContentLength !== size) {
      throw new CopyVerificationError(`the copy of ${key} has ${head.ContentLength} bytes, not ${size}`);
    }
    const stored = head[`Checksum${copied.algorithm}` as `Checksum${FullObjectCrc | CompositeAlgorithm}`];
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
