import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import { type AwsClients, bodyRatePlugin, createServiceApp, every, rateLimitsPlugin, splitList, usersTableRoleLookup } from '@scs/common';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { Counter } from 'prom-client';
import type { UploadConfig } from './config';
import { FileRepository, UsageRepository } from '@scs/common/files';
import { filesRoutes } from './routes/files';
import { resumableRoutes } from './routes/resumable';
import { DirectUploads } from './files/direct-uploads';
import { Downloads } from './files/downloads';
import { AllowedTypes } from './content/file-types';
import { ObjectStore } from './storage/object-store';
import { Quota } from './files/quota';
import { ResumableUploads } from './files/resumable-uploads';
import { Sweeper } from './files/sweeper';
import { Uploads } from './files/uploads';

/** How long a closing service waits for clean-ups and quota releases still being retried, in ms. */
const RETRIES_AT_SHUTDOWN_MS = 5_000;

declare module 'fastify' {
  interface FastifyInstance {
    /** The leftovers sweep (run periodically by the server; tests call it directly). */
    sweeper: Sweeper;
  }
}

export interface UploadDeps {
  aws: AwsClients;
  fastify?: Partial<FastifyServerOptions>;
  /** Run the leftovers sweep periodically (the server does; tests call it directly). */
  sweep?: boolean;
  /** Clock for tests (fake time): the account check's cache and the key store. */
  now?: () => number;
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
  const types = new AllowedTypes(config.ALLOWED_TYPES);
  const store = await ObjectStore.create(aws.s3, config);
  const app = await createServiceApp(config, {
    service: 'upload',
    aws,
    readiness: () => store.ping(),
    docs: { prefix: '/api/files/docs', title: 'Secure Cloud Storage: files' },
    fastify: { requestTimeout: config.UPLOAD_TIMEOUT_SECONDS * 1000, ...deps.fastify },
    // A deleted account's token is refused within seconds, not when it expires (15 minutes).
    currentRole: usersTableRoleLookup(aws.dynamo, config.USERS_TABLE),
    accountCheck: { cacheMs: config.ACCOUNT_CHECK_CACHE_SECONDS * 1000 },
    ...(deps.now ? { now: deps.now } : {}),
    securityHeaders: { contentSecurityPolicy: uiContentSecurityPolicy(config) },
    // The browser UI: static files, public, served at / (WB-03: no inline script anywhere).
    publicRoutes: async (app) => {
      await app.register(fastifyStatic, { root: join(__dirname, '..', 'public'), prefix: '/', index: 'index.html', wildcard: false });
      // The one library the UI loads (public/sha256-worker.js: a file's SHA-256 while it uploads), its ES modules as published.
      await app.register(fastifyStatic, {
        root: dirname(require.resolve('@noble/hashes/sha2.js')),
        prefix: '/vendor/noble-hashes/',
        decorateReply: false,
        wildcard: false,
        index: false,
        allowedPath: (path) => /^\/[\w-]+\.js$/.test(path),
      });
    },
  });

  // Bodies that trickle: an upload below the minimum rate, any other body past a short deadline (408).
  await app.register(bodyRatePlugin, {
    minBytesPerSecond: config.MIN_UPLOAD_BYTES_PER_SECOND,
    windowMs: config.UPLOAD_RATE_WINDOW_SECONDS * 1000,
    graceMs: config.UPLOAD_RATE_GRACE_SECONDS * 1000,
    bodyTimeoutMs: config.BODY_TIMEOUT_SECONDS * 1000,
  });
  await app.register(multipart, { limits: { fileSize: config.MAX_UPLOAD_BYTES, files: 1, parts: 5, fields: 4 } });
  // Keyed by the authenticated user, so one account cannot flood and others are unaffected; counted
  // in the throttle table, so the limit holds across every upload instance.
  await app.register(rateLimitsPlugin, { perUser: true, shared: { db: aws.dynamo, table: config.THROTTLE_TABLE, service: 'upload' } });

  const usage = new UsageRepository(aws.dynamo, config.FILES_TABLE, app.log);
  const files = new FileRepository(aws.dynamo, config.FILES_TABLE, app.log, usage);
  // Clean-ups and quota releases still being retried after an outage get a few seconds to land
  // (`files.settled` waits for `usage`'s too).
  app.addHook('onClose', async () => void (await Promise.all([files.settled(RETRIES_AT_SHUTDOWN_MS), store.settled(RETRIES_AT_SHUTDOWN_MS)])));
  const quota = new Quota(usage, files, config, app.log);
  const sweeper = new Sweeper(store, files, config, app.log);
  app.decorate('sweeper', sweeper);
  const uploadsCounter = new Counter({
    name: 'scs_uploads_total',
    help: 'Upload requests by outcome',
    labelNames: ['outcome'] as const,
    registers: [app.metrics],
  });
  await app.register(filesRoutes, {
    prefix: '/api/files',
    uploads: new Uploads(store, files, quota, types, app.log),
    directUploads: new DirectUploads(store, files, quota, types, config, app.log),
    downloads: new Downloads(store, files, usage),
    types,
    config,
    uploadsCounter,
  });
  await app.register(resumableRoutes, {
    prefix: '/api/files/uploads',
    resumable: new ResumableUploads(store, files, quota, types, config, app.log),
    config,
  });

  if (deps.sweep) {
    const stop = every(config.SWEEP_INTERVAL_SECONDS * 1000, async () => void (await sweeper.sweep()), app.log, 'the leftovers sweep failed');
    app.addHook('onClose', async () => stop());
  }
  return app;
}
