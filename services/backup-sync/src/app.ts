import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createServiceApp, NotImplemented, usersTableRoleLookup } from '@scs/common';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { BackupConfig } from './config';

export interface BackupDeps {
  aws: AwsClients;
  fastify?: Partial<FastifyServerOptions>;
}

/**
 * The backup-sync service. This is its foundation: health, readiness against the backup bucket,
 * metrics, docs and admin-only token verification. The backup API arrives with its own issue;
 * until then its routes authenticate the caller (403 for non-admins) and answer 501.
 */
export async function buildApp(config: BackupConfig, deps: BackupDeps): Promise<FastifyInstance> {
  const { app } = await createServiceApp(config, {
    service: 'backup-sync',
    aws: deps.aws,
    readiness: async () => {
      await deps.aws.s3.send(new HeadBucketCommand({ Bucket: config.BACKUP_BUCKET }));
    },
    docs: { prefix: '/api/backup/docs', title: 'Secure Cloud Storage: backups' },
    // Admin routes check the account's role now, not only the token's claim.
    currentRole: usersTableRoleLookup(deps.aws.dynamo, config.USERS_TABLE),
    ...(deps.fastify ? { fastify: deps.fastify } : {}),
  });
  app.all('/api/backup/*', { config: { roles: ['admin'] } }, async () => {
    throw new NotImplemented('The backup API is not available yet');
  });
  return app;
}
