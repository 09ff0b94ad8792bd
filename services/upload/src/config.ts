import { baseConfigProperties, copyConfigProperties, portProperty, resourceNameProperties } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';

const { PRIMARY_BUCKET, SENSITIVE_BUCKET, FILES_TABLE, THROTTLE_TABLE, SENSITIVE_KMS_KEY_ID, USERS_TABLE } = resourceNameProperties;

/** The upload service's configuration; every key is the environment variable of the same name. */
export const UploadConfig = Type.Object({
  ...baseConfigProperties,
  PORT: portProperty(3002),
  PRIMARY_BUCKET,
  SENSITIVE_BUCKET,
  FILES_TABLE,
  /** Where the per-user rate limits are counted, shared by every upload instance. */
  THROTTLE_TABLE,
  SENSITIVE_KMS_KEY_ID,
  /** The auth service's accounts: the file API refuses a token whose account is gone. */
  USERS_TABLE,
  /** How long the answer "this account exists" is remembered per account (0: read on every request). */
  ACCOUNT_CHECK_CACHE_SECONDS: Type.Integer({ default: 5, minimum: 0, maximum: 60 }),
  /**
   * The largest file a streamed (or presigned-POST) upload may carry, in bytes: at most 5 GiB. Such
   * an object carries S3's composite CRC32 of its parts, and a later copy above 5 GiB (to the vault,
   * the backup) needs a full-object checksum or the parts' SHA-256s; larger files are resumable
   * uploads (MAX_DIRECT_UPLOAD_BYTES), whose parts carry their SHA-256.
   */
  MAX_UPLOAD_BYTES: Type.Integer({ default: 104_857_600, minimum: 1, maximum: 5_368_709_120 }),
  QUOTA_BYTES: Type.Integer({ default: 1_073_741_824, minimum: 1 }),
  /** Files per user, uploads under way and pending direct uploads included (each holds one). */
  QUOTA_FILES: Type.Integer({ default: 10_000, minimum: 1 }),
  /** Listings (GET /api/files) per user per minute. */
  LISTS_PER_MINUTE: Type.Integer({ default: 600, minimum: 1 }),
  /** Extensions accepted (each must be a type the service can recognise from content). */
  ALLOWED_TYPES: Type.String({ default: 'pdf,png,jpg,jpeg,gif,webp,txt,csv,json,docx,xlsx,pptx,zip' }),
  /**
   * Above this size (bytes) a file is copied in parts: the limit of S3's CopyObject (5 GiB), lowered
   * only in tests. For a resumable upload above it S3 cannot compute the file's SHA-256 in a
   * server-side copy, so the client's declared one is recorded (given at create or at complete).
   */
  COPY_IN_PARTS_ABOVE_BYTES: copyConfigProperties.COPY_IN_PARTS_ABOVE_BYTES,
  /** Lifetime of presigned download and upload URLs (DL-05: at most 300 s). */
  PRESIGN_EXPIRES_SECONDS: Type.Integer({ default: 300, minimum: 10, maximum: 300 }),
  DOWNLOAD_URL_EXPIRES_SECONDS: Type.Integer({ default: 60, minimum: 5, maximum: 300 }),
  UPLOAD_PART_BYTES: Type.Integer({ default: 8 * 1024 * 1024, minimum: 5 * 1024 * 1024 }),
  UPLOAD_QUEUE_SIZE: Type.Integer({ default: 4, minimum: 1, maximum: 16 }),
  /**
   * Part buffers (of UPLOAD_PART_BYTES each) the process keeps for all its streamed uploads; an
   * upload that finds none free stops reading its request until one is. UPLOAD_QUEUE_SIZE + 1 of
   * them are allocated at start, the rest as uploads at once need them.
   */
  UPLOAD_PART_BUFFERS: Type.Integer({ default: 8, minimum: 1, maximum: 1024 }),
  UPLOADS_PER_MINUTE: Type.Integer({ default: 120, minimum: 1 }),
  /**
   * How long a streamed upload's quota reservation lasts without renewal (renewed every third of
   * it while the upload runs): after a crash, the usage reconciliation releases it once this passed.
   */
  RESERVATION_LEASE_SECONDS: Type.Integer({ default: 300, minimum: 3 }),
  /** The largest file a resumable direct upload (`/api/files/uploads`) may declare, in bytes (50 GiB). */
  MAX_DIRECT_UPLOAD_BYTES: Type.Integer({ default: 53_687_091_200, minimum: 1 }),
  /**
   * How long a resumable direct upload may stay unfinished, in seconds: then the sweep aborts its
   * multipart upload and releases its reservation.
   */
  UPLOAD_SESSION_TTL_SECONDS: Type.Integer({ default: 86_400, minimum: 60 }),
  /** How long a direct upload may stay unfinished before the sweep deletes it. */
  PENDING_UPLOAD_SECONDS: Type.Integer({ default: 3600, minimum: 60 }),
  SWEEP_INTERVAL_SECONDS: Type.Integer({ default: 300, minimum: 5 }),
  /** The UI sends files larger than this straight to S3 (presigned POST) instead of through the service. */
  DIRECT_UPLOAD_ABOVE_BYTES: Type.Integer({ default: 104_857_600, minimum: 1 }),
  /** Origins the browser may talk to besides this site (S3 for direct uploads); derived when empty. */
  S3_PUBLIC_ORIGINS: Type.String({ default: '' }),
  /** Time a single upload request may take (large files on slow links). */
  UPLOAD_TIMEOUT_SECONDS: Type.Integer({ default: 3600, minimum: 10 }),
  /**
   * The slowest an upload's body may arrive, in bytes per second, averaged over
   * UPLOAD_RATE_WINDOW_SECONDS once UPLOAD_RATE_GRACE_SECONDS have passed (408 REQUEST_TOO_SLOW);
   * time the service itself is not reading (waiting for S3) does not count. 0: no minimum.
   */
  MIN_UPLOAD_BYTES_PER_SECOND: Type.Integer({ default: 1024, minimum: 0, maximum: 104_857_600 }),
  UPLOAD_RATE_WINDOW_SECONDS: Type.Integer({ default: 30, minimum: 1, maximum: 600 }),
  UPLOAD_RATE_GRACE_SECONDS: Type.Integer({ default: 10, minimum: 0, maximum: 600 }),
  /** Time the body of any other request (a JSON body) may take to arrive whole (408 REQUEST_TIMEOUT). */
  BODY_TIMEOUT_SECONDS: Type.Integer({ default: 30, minimum: 1, maximum: 300 }),
});
export type UploadConfig = Static<typeof UploadConfig>;
