import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { type AwsClients, createServiceApp, ServerSideCopier, usersTableRoleLookup } from '@scs/common';
import { FileRepository, UsageRepository } from '@scs/common/files';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { BackupConfig } from './config';
import { BackupMetrics } from './metrics';
import { backupRoutes } from './routes/backup';
import { BackupService } from './services/backup-service';
import { Backups } from './services/backups';
import { BackupEventConsumer } from './services/consumer';
import { Accounts } from './services/accounts';
import { Reconciler } from './services/reconciler';
import { UsageReconciler } from './services/usage';

declare module 'fastify' {
  interface FastifyInstance {
    backup: BackupService;
  }
}

export interface BackupDeps {
  aws: AwsClients;
  fastify?: Partial<FastifyServerOptions>;
  /** Consume events and reconcile periodically (the server does; tests drive them directly). */
  background?: boolean;
}

/**
 * The backup-sync service: the common foundation, the admin API under /api/backup, and (when
 * `background`) the event consumer, the periodic reconciliation and the periodic usage
 * reconciliation, stopped on close.
 */
export async function buildApp(config: BackupConfig, deps: BackupDeps): Promise<FastifyInstance> {
  const { aws } = deps;
  const app = await createServiceApp(config, {
    service: 'backup-sync',
    aws,
    readiness: async () => {
      await aws.s3.send(new HeadBucketCommand({ Bucket: config.BACKUP_BUCKET }));
    },
    docs: { prefix: '/api/backup/docs', title: 'Secure Cloud Storage: backups' },
    // Admin routes check the account's role now, not only the token's claim.
    currentRole: usersTableRoleLookup(deps.aws.dynamo, config.USERS_TABLE),
    ...(deps.fastify ? { fastify: deps.fastify } : {}),
  });

  const queue = await aws.sqs.send(new GetQueueUrlCommand({ QueueName: config.BACKUP_EVENTS_QUEUE }));
  if (!queue.QueueUrl) throw new Error(`queue ${config.BACKUP_EVENTS_QUEUE} has no URL`);
  const queueUrl = queue.QueueUrl;

  const metrics = new BackupMetrics(app.metrics);
  const usageRepository = new UsageRepository(aws.dynamo, config.FILES_TABLE, app.log);
  const files = new FileRepository(aws.dynamo, config.FILES_TABLE, app.log, usageRepository);
  const backups = new Backups(aws.s3, new ServerSideCopier(aws.s3, aws.kms, { multipartAboveBytes: config.COPY_IN_PARTS_ABOVE_BYTES }), files, config);
  const reconciler = new Reconciler(aws.s3, backups, config, app.log, () => metrics.copies.inc({ trigger: 'reconcile' }));
  const consumer = new BackupEventConsumer(aws.sqs, queueUrl, backups, metrics, config, app.log);
  const usage = new UsageReconciler(usageRepository, app.log);
  const accounts = new Accounts(aws.dynamo, config.USERS_TABLE);
  const service = new BackupService(aws.s3, aws.sqs, queueUrl, backups, reconciler, consumer, metrics, config, app.log, usage, accounts);
  app.decorate('backup', service);
  await app.register(backupRoutes, { prefix: '/api/backup', service });

  if (deps.background) {
    app.addHook('onReady', async () => service.startBackground());
    app.addHook('onClose', async () => service.stopBackground());
  }
  return app;
}
