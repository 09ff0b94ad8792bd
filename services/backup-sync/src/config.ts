import { baseConfigProperties, copyConfigProperties, portProperty, resourceNameProperties } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';

const { PRIMARY_BUCKET, SENSITIVE_BUCKET, BACKUP_BUCKET, BACKUP_KMS_KEY_ID, SENSITIVE_KMS_KEY_ID, FILES_TABLE, USERS_TABLE, BACKUP_EVENTS_QUEUE } =
  resourceNameProperties;

/** The backup-sync service's configuration; every key is the environment variable of the same name. */
export const BackupConfig = Type.Object({
  ...baseConfigProperties,
  PORT: portProperty(3003),
  PRIMARY_BUCKET,
  SENSITIVE_BUCKET,
  BACKUP_BUCKET,
  BACKUP_KMS_KEY_ID,
  SENSITIVE_KMS_KEY_ID,
  FILES_TABLE,
  /** Read (id and role only) to check an admin's current role. */
  USERS_TABLE,
  BACKUP_EVENTS_QUEUE,
  RECONCILE_INTERVAL_SECONDS: Type.Integer({ default: 900, minimum: 10 }),
  /** How often each instance recomputes every user's quota usage from the records (and releases reservations of dead uploads). */
  USAGE_RECONCILE_INTERVAL_SECONDS: Type.Integer({ default: 3600, minimum: 10 }),
  BACKUP_RETENTION_DAYS: Type.Integer({ default: 30, minimum: 1 }),
  /** Copies, and event messages handled, at once (each a server-side S3 request or a few). */
  BACKUP_CONCURRENCY: Type.Integer({ default: 8, minimum: 1, maximum: 64 }),
  /** Long-poll wait of each receive from the queue (at most 20 s); stopping waits for the receive under way. */
  BACKUP_POLL_SECONDS: Type.Integer({ default: 5, minimum: 0, maximum: 20 }),
  /**
   * How long an event waits for the upload service to finish the file it names (its record comes
   * a moment after the object) before it is retried later (BACKUP_RETRY_SECONDS).
   */
  BACKUP_RECORD_WAIT_MS: Type.Integer({ default: 2_000, minimum: 0, maximum: 60_000 }),
  /** How long an event being handled stays hidden from other consumers; after a crash it comes back after this. */
  BACKUP_VISIBILITY_SECONDS: Type.Integer({ default: 300, minimum: 1, maximum: 43_200 }),
  /** An event that fails is retried after this many seconds, doubled each time (the queue dead-letters it after 5 receives). */
  BACKUP_RETRY_SECONDS: Type.Integer({ default: 5, minimum: 0, maximum: 3600 }),
  /** Above this size (bytes) backups, their deleted copies and restores are copied in parts. */
  COPY_IN_PARTS_ABOVE_BYTES: copyConfigProperties.COPY_IN_PARTS_ABOVE_BYTES,
});
export type BackupConfig = Static<typeof BackupConfig>;
