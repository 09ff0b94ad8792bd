import { baseConfigProperties, portProperty, resourceNameProperties } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';

const { PRIMARY_BUCKET, SENSITIVE_BUCKET, BACKUP_BUCKET, BACKUP_KMS_KEY_ID, FILES_TABLE, USERS_TABLE } = resourceNameProperties;

/** The backup-sync service's configuration; every key is the environment variable of the same name. */
export const BackupConfig = Type.Object({
  ...baseConfigProperties,
  PORT: portProperty(3003),
  PRIMARY_BUCKET,
  SENSITIVE_BUCKET,
  BACKUP_BUCKET,
  BACKUP_KMS_KEY_ID,
  FILES_TABLE,
  /** Read (id and role only) to check an admin's current role. */
  USERS_TABLE,
  RECONCILE_INTERVAL_SECONDS: Type.Integer({ default: 900, minimum: 10 }),
  BACKUP_RETENTION_DAYS: Type.Integer({ default: 30, minimum: 1 }),
});
export type BackupConfig = Static<typeof BackupConfig>;
