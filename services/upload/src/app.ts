import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createServiceApp, NotImplemented } from '@scs/common';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { UploadConfig } from './config';

export interface UploadDeps {
  aws: AwsClients;
  fastify?: Partial<FastifyServerOptions>;
}

/**
 * The upload service. This is its foundation: health, readiness against S3, metrics, docs and
 * token verification with the auth service's public keys. The file API arrives with its own
 * issue; until then its routes authenticate the caller and answer 501.
 */
export async function buildApp(config: UploadConfig, deps: UploadDeps): Promise<FastifyInstance> {
  const { app } = await createServiceApp(config, {
    service: 'upload',
    aws: deps.aws,
    readiness: async () => {
      await deps.aws.s3.send(new HeadBucketCommand({ Bucket: config.PRIMARY_BUCKET }));
    },
    docs: { prefix: '/api/files/docs', title: 'Secure Cloud Storage: files' },
    ...(deps.fastify ? { fastify: deps.fastify } : {}),
  });
  const notYet = async () => {
    throw new NotImplemented('The file API is not available yet');
  };
  app.all('/api/files', notYet);
  app.all('/api/files/*', notYet);
  return app;
}
