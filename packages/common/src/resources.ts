import { Type } from '@sinclair/typebox';

/**
 * Names of the AWS resources the product uses. Every one is an environment variable of the same
 * meaning (the product contract); these are the defaults the local stack and Terraform share.
 */
export const resourceNameProperties = {
  PRIMARY_BUCKET: Type.String({ default: 'scs-primary', minLength: 3 }),
  SENSITIVE_BUCKET: Type.String({ default: 'scs-sensitive', minLength: 3 }),
  BACKUP_BUCKET: Type.String({ default: 'scs-backup', minLength: 3 }),
  SENSITIVE_KMS_KEY_ID: Type.String({ default: 'alias/scs-sensitive', minLength: 1 }),
  BACKUP_KMS_KEY_ID: Type.String({ default: 'alias/scs-backup', minLength: 1 }),
  SECRETS_KMS_KEY_ID: Type.String({ default: 'alias/scs-secrets', minLength: 1 }),
  USERS_TABLE: Type.String({ default: 'scs-users', minLength: 3 }),
  SESSIONS_TABLE: Type.String({ default: 'scs-sessions', minLength: 3 }),
  THROTTLE_TABLE: Type.String({ default: 'scs-throttle', minLength: 3 }),
  FILES_TABLE: Type.String({ default: 'scs-files', minLength: 3 }),
  JWT_SIGNING_KEY_PARAM: Type.String({ default: '/scs/auth/jwt-signing-key', pattern: '^/' }),
  OBJECT_EVENTS_QUEUE: Type.String({ default: 'scs-object-events', minLength: 1 }),
  BACKUP_EVENTS_QUEUE: Type.String({ default: 'scs-backup-events', minLength: 1 }),
};

/** DynamoDB key design, shared by provisioning (local), Terraform (by convention) and the stores. */
export interface TableSpec {
  hashKey: string;
  rangeKey?: string;
  ttlAttribute?: string;
  indexes?: { name: string; hashKey: string; rangeKey?: string }[];
}

export const TABLE_SPECS: Record<'USERS_TABLE' | 'SESSIONS_TABLE' | 'THROTTLE_TABLE' | 'FILES_TABLE', TableSpec> = {
  USERS_TABLE: { hashKey: 'username' },
  SESSIONS_TABLE: { hashKey: 'pk', ttlAttribute: 'expiresAt' },
  THROTTLE_TABLE: { hashKey: 'pk', ttlAttribute: 'expiresAt' },
  FILES_TABLE: { hashKey: 'userId', rangeKey: 'fileId' },
};

/** Every queue has a dead-letter queue of this name (provisioning, Terraform and the local runner agree on it). */
export const deadLetterQueueName = (queue: string): string => `${queue}-dlq`;
