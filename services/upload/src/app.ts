import { HeadBucketCommand } from '@aws-sdk/client-s3';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import { type AwsClients, createServiceApp, every, rateLimitsPlugin, splitList } from '@scs/common';
import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { Counter } from 'prom-client';
import type { UploadConfig } from './config';
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
 * The UI's CSP (WB-03): only this origin for scripts, styles and API calls, plus S3 for direct
 * uploads and downloads; no inline script, no plugins, no framing, no base-uri changes.
 */
export function uiContentSecurityPolicy(config: UploadConfig): Record<string, string[]> {
  const s3 = splitList(config.S3_PUBLIC_ORIGINS);
  if (s3.length === 0) {
    if (config.AWS_ENDPOINT_URL) s3.push(new URL(config.AWS_ENDPOINT_URL).origin);
    else s3.push(`https://${config.PRIMARY_BUCKET}.s3.${config.AWS_REGION}.amazonaws.com`, `https://s3.${config.AWS_REGION}.amazonaws.com`);
  }
  return {
    'default-src': ["'self'"],
    'script-src': ["'self'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:'],
    'connect-src': ["'self'", ...s3],
    'object-src': ["'none'"],
    'base-uri': ["'none'"],
    'frame-ancestors': ["'none'"],
    'form-action': ["'self'"],
  };
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
    securityHeaders: { contentSecurityPolicy: uiContentSecurityPolicy(config) },
    // The browser UI: static files, public, served at / (WB-03: no inline script anywhere).
    publicRoutes: async (app) => {
      await app.register(fastifyStatic, { root: join(__dirname, '..', 'public'), prefix: '/', index: 'index.html', wildcard: false });
    },
  });

  await app.register(multipart, { limits: { fileSize: config.MAX_UPLOAD_BYTES, files: 1, parts: 5, fields: 4 } });
  // Keyed by the authenticated user, so one account cannot flood and others are unaffected.
  await app.register(rateLimitsPlugin, { perUser: true });

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
