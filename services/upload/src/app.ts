import { HeadBucketCommand } from '@aws-sdk/client-s3';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import { type AwsClients, createServiceApp, every } from '@scs/common';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { Counter } from 'prom-client';
import type { UploadConfig } from './config';
import { RateLimited } from './errors';
import { FileRepository } from './repositories/files';
import { filesRoutes } from './routes/files';
import { FilesService } from './services/files-service';

declare module 'fastify' {
  interface FastifyInstance {
    files: FilesService;
  }
}

export interface UploadDeps {
  aws: AwsClients;
  fastify?: Partial<FastifyServerOptions>;
  /** Run the leftovers sweep periodically (the server does; tests call it directly). */
  sweep?: boolean;
}

/**
 * The upload service: the common service foundation, then multipart parsing (bodies are read
 * only inside the upload handler, after authentication: FU-11), per-user rate limits, and the
 * file API under /api/files.
 */
export async function buildApp(config: UploadConfig, deps: UploadDeps): Promise<FastifyInstance> {
  const { aws } = deps;
  const { app } = await createServiceApp(config, {
    service: 'upload',
    aws,
    readiness: async () => {
      await aws.s3.send(new HeadBucketCommand({ Bucket: config.PRIMARY_BUCKET }));
    },
    docs: { prefix: '/api/files/docs', title: 'Secure Cloud Storage: files' },
    fastify: { requestTimeout: config.UPLOAD_TIMEOUT_SECONDS * 1000, ...deps.fastify },
  });

  await app.register(multipart, { limits: { fileSize: config.MAX_UPLOAD_BYTES, files: 1, parts: 5, fields: 4 } });
  await app.register(rateLimit, {
    global: false,
    // Keyed by the authenticated user, so one account cannot flood and others are unaffected.
    hook: 'preHandler',
    keyGenerator: (request) => request.user?.sub ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      Object.assign(new RateLimited(), { retryAfterSeconds: Math.ceil(context.ttl / 1000) }),
  });

  const service = new FilesService(aws.s3, new FileRepository(aws.dynamo, config.FILES_TABLE), config, app.log);
  app.decorate('files', service);
  const uploads = new Counter({
    name: 'scs_uploads_total',
    help: 'Upload requests by outcome',
    labelNames: ['outcome'] as const,
    registers: [app.metrics],
  });
  await app.register(filesRoutes, { prefix: '/api/files', service, config, uploads });

  if (deps.sweep) {
    const stop = every(config.SWEEP_INTERVAL_SECONDS * 1000, async () => void (await service.sweep()), app.log, 'the leftovers sweep failed');
    app.addHook('onClose', async () => stop());
  }
  return app;
}
