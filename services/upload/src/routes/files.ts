import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';
import type { Counter } from 'prom-client';
import type { UploadConfig } from '../config';
import { FileView, fileView } from '@scs/common/files';
import type { DirectUploads } from '../files/direct-uploads';
import type { Downloads } from '../files/downloads';
import type { AllowedTypes } from '../content/file-types';
import { FILE_ID_PATTERN } from '../files/ids';
import type { Uploads } from '../files/uploads';
import { uploadForm } from './upload-form';

/** An upload's answer: the file as listing and reading show it, less `location` (not known yet). */
export const UploadedFile = Type.Omit(FileView, ['location']);
type UploadedFile = Static<typeof UploadedFile>;

const IdParams = Type.Object({ id: Type.String({ pattern: FILE_ID_PATTERN, description: 'File id (UUID)' }) });
const Sensitive = Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')]));

export interface FilesRoutesOptions {
  uploads: Uploads;
  directUploads: DirectUploads;
  downloads: Downloads;
  types: AllowedTypes;
  config: UploadConfig;
  uploadsCounter: Counter<'outcome'>;
}

export const filesRoutes: FastifyPluginAsyncTypebox<FilesRoutesOptions> = async (app, opts) => {
  const { uploads, directUploads, downloads, types, config, uploadsCounter } = opts;
  const limits = {
    fileSize: config.MAX_UPLOAD_BYTES,
    files: 1,
    fields: 4,
    fieldSize: 1024,
    fieldNameSize: 100,
    parts: 5,
    headerPairs: 20,
  };
  const rateLimit = { max: config.UPLOADS_PER_MINUTE, timeWindow: 60_000 };
  // While the part queue is full the service stops reading the request (back-pressure), for as long
  // as S3 takes to accept a part (each attempt bounded by AWS_REQUEST_TIMEOUT_MS): the connection's
  // idle timeout must not cut the client off meanwhile.
  const uploadIdleMs = Math.max(10_000, config.AWS_REQUEST_TIMEOUT_MS * (config.AWS_MAX_ATTEMPTS + 1));

  app.post(
    '/',
    {
      config: { rateLimit, longBody: true },
      bodyLimit: config.MAX_UPLOAD_BYTES + 1024 * 1024,
      schema: {
        summary: 'Upload one file (multipart: optional field "sensitive" before the "file" part)',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        querystring: Type.Object({ sensitive: Sensitive }),
        response: { 201: UploadedFile, ...errorResponses(400, 401, 408, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      let stored: UploadedFile;
      const socket = request.raw.socket as { setTimeout?: (ms: number) => unknown } | undefined;
      socket?.setTimeout?.(uploadIdleMs);
      try {
        const form = uploadForm(request, limits, request.query.sensitive === 'true');
        stored = fileView(await uploads.upload(request.user.sub, form));
      } catch (err) {
        // The form and the service throw domain errors (the form those of the multipart parser).
        const reason = (err as { code?: string } | null)?.code ?? 'error';
        uploadsCounter.inc({ outcome: reason });
        request.audit('upload', 'failure', { reason });
        throw err;
      }
      uploadsCounter.inc({ outcome: 'success' });
      request.audit('upload', 'success', { fileId: stored.id, size: stored.size, sensitive: stored.sensitive });
      return reply.status(201).send(stored);
    },
  );

  app.get(
    '/',
    {
      config: { rateLimit: { max: config.LISTS_PER_MINUTE, timeWindow: 60_000 } },
      schema: {
        summary: "The caller's files, newest first",
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
          cursor: Type.Optional(Type.String({ pattern: FILE_ID_PATTERN })),
        }),
        response: {
          200: Type.Object({ items: Type.Array(FileView), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errorResponses(400, 401, 429),
        },
      },
    },
    async (request) => {
      const page = await downloads.list(request.user.sub, request.query.limit, request.query.cursor);
      return { items: page.items.map(fileView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/usage',
    {
      schema: {
        summary: "The caller's storage use and the upload limits",
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        response: {
          200: Type.Object({
            usedBytes: Type.Integer(),
            quotaBytes: Type.Integer(),
            maxUploadBytes: Type.Integer(),
            directUploadAboveBytes: Type.Integer(),
            allowedTypes: Type.Array(Type.String()),
          }),
          ...errorResponses(401),
        },
      },
    },
    async (request) => ({
      usedBytes: await downloads.usedBytes(request.user.sub),
      quotaBytes: config.QUOTA_BYTES,
      maxUploadBytes: config.MAX_UPLOAD_BYTES,
      directUploadAboveBytes: config.DIRECT_UPLOAD_ABOVE_BYTES,
      allowedTypes: types.extensions,
    }),
  );

  app.get(
    '/:id',
    {
      schema: {
        summary: 'One file',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 200: FileView, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => fileView(await downloads.get(request.user.sub, request.params.id)),
  );

  app.get(
    '/:id/download',
    {
      schema: {
        summary: 'Redirect to a short-lived presigned URL that downloads the file as an attachment',
        description: 'With ?redirect=false the URL is answered as JSON instead (for scripts and the UI).',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        querystring: Type.Object({ redirect: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) }),
        response: {
          200: Type.Object({ url: Type.String(), expiresAt: Type.String({ format: 'date-time' }) }),
          302: Type.Null(),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const url = await downloads.downloadUrl(request.user.sub, request.params.id);
      request.audit('download', 'success', { fileId: request.params.id });
      reply.header('cache-control', 'no-store');
      if (request.query.redirect === 'false') {
        return { url, expiresAt: new Date(Date.now() + config.DOWNLOAD_URL_EXPIRES_SECONDS * 1000).toISOString() };
      }
      return reply.redirect(url, 302);
    },
  );

  app.delete(
    '/:id',
    {
      schema: {
        summary: 'Delete a file',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await downloads.delete(request.user.sub, request.params.id);
      request.audit('delete', 'success', { fileId: request.params.id });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/presign',
    {
      config: { rateLimit },
      schema: {
        summary: 'A presigned POST for a direct browser-to-S3 upload',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 1024 }),
            size: Type.Integer({ minimum: 0 }),
            contentType: Type.String({ minLength: 1, maxLength: 200 }),
            sensitive: Type.Boolean({ default: false }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Type.String({ format: 'uuid' }),
            url: Type.String(),
            fields: Type.Record(Type.String(), Type.String()),
            expiresAt: Type.String({ format: 'date-time' }),
          }),
          ...errorResponses(400, 401, 408, 413, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      try {
        const out = await directUploads.presign(request.user.sub, request.body);
        request.audit('presign', 'success', { fileId: out.id, size: request.body.size });
        return reply.status(201).send(out);
      } catch (err) {
        request.audit('presign', 'failure', { reason: (err as { code?: string }).code ?? 'error' });
        throw err;
      }
    },
  );

  app.post(
    '/:id/complete',
    {
      schema: {
        summary: 'Verify a direct upload and make it a file',
        description:
          'Checks that S3 stored what the upload form issued (size, Content-Type, Content-Disposition, owner metadata: 400 UPLOAD_MISMATCH) ' +
          'and that the bytes are the declared type (415), computes the SHA-256, and copies the bytes to the file key with the ' +
          "file's attributes and tags. Exactly one request acts: a parallel one gets 409 UPLOAD_IN_PROGRESS, a later one the file. " +
          '404 NOTHING_UPLOADED while nothing was uploaded yet.',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 201: UploadedFile, ...errorResponses(400, 401, 404, 409, 415, 503) },
      },
    },
    async (request, reply) => {
      try {
        const record = await directUploads.complete(request.user.sub, request.params.id);
        request.audit('upload', 'success', { fileId: record.fileId, size: record.size, direct: true });
        return reply.status(201).send(fileView(record));
      } catch (err) {
        request.audit('upload', 'failure', { fileId: request.params.id, direct: true, reason: (err as { code?: string }).code ?? 'error' });
        throw err;
      }
    },
  );
};
