import type { ServiceInputTypes, ServiceOutputTypes } from '@aws-sdk/client-s3';
import type { FinalizeRequestMiddleware, Pluggable, RelativeMiddlewareOptions } from '@smithy/types';

/**
 * Headers that carry a checksum of the request's body, which S3 verifies before it accepts the
 * body. Not `x-amz-checksum-algorithm`, `-type` or `-mode`: those name an algorithm, not a value.
 */
const BODY_CHECKSUM_HEADER = /^x-amz-checksum-(crc32|crc32c|crc64nvme|sha1|sha256)$/i;
const PAYLOAD_HASH_HEADER = 'x-amz-content-sha256';

/**
 * True when the request sends a body with a checksum of it and no payload hash is set yet. A
 * request without a body is left alone: among them, those being presigned (the presigner marks
 * them unsigned-payload itself, and a second, lower-case header would end up in the URL).
 */
export function sendsChecksummedBody(request: { headers: Record<string, string>; body?: unknown }): boolean {
  if (request.body === undefined || request.body === null) return false;
  const names = Object.keys(request.headers);
  return names.some((h) => BODY_CHECKSUM_HEADER.test(h)) && !names.some((h) => h.toLowerCase() === PAYLOAD_HASH_HEADER);
}

const middleware: FinalizeRequestMiddleware<ServiceInputTypes, ServiceOutputTypes> = (next) => async (args) => {
  const request = args.request as { headers?: Record<string, string>; body?: unknown };
  if (request.headers && sendsChecksummedBody({ headers: request.headers, body: request.body })) request.headers[PAYLOAD_HASH_HEADER] = 'UNSIGNED-PAYLOAD';
  return next(args);
};

/** Where it runs: after the build step set the checksum header, right before SigV4 signs the request. */
export const unsignedPayloadWithChecksumOptions: RelativeMiddlewareOptions = {
  name: 'unsignedPayloadWithChecksum',
  relation: 'before',
  toMiddleware: 'httpSigningMiddleware',
  override: true,
};

/**
 * An S3 client plugin (`client.middlewareStack.use(...)`): a request whose body goes with a checksum
 * S3 verifies (`x-amz-checksum-crc32` and kin, which the SDK's flexible-checksums middleware sets
 * in the build step, or which the caller gave) is signed with an unsigned payload
 * (`x-amz-content-sha256: UNSIGNED-PAYLOAD`). SigV4 still signs every header, the checksum among
 * them, and S3 refuses a body that does not match it (400 BadDigest), so the signer's own SHA-256
 * of the body, a second hash of every byte of every part, would add no check. The SDK sends its
 * own streamed bodies the same way (STREAMING-UNSIGNED-PAYLOAD-TRAILER, which is left alone, as is
 * any payload hash already set). Requests without a body or without a body checksum (GET, HEAD,
 * listings, CreateMultipartUpload, ...) keep their signed payload; presigned URLs (no body) are
 * left to the presigner, and presigned POSTs sign a policy, not a request.
 */
export const unsignedPayloadWithChecksum: Pluggable<ServiceInputTypes, ServiceOutputTypes> = {
  applyToStack: (stack) => stack.addRelativeTo(middleware, unsignedPayloadWithChecksumOptions),
};
