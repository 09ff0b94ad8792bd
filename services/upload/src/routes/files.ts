import type { MultipartFile } from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorResponse } from '@scs/common';
import { Type } from '@sinclair/typebox';
import type { Counter } from 'prom-client';
import type { UploadConfig } from '../config';
import { BadMultipart, NoFile } from '../errors';
import { type FilesService, toView } from '../services/files-service';
import { FILE_ID_PATTERN } from '../services/ids';

const FileView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  contentType: Type.String(),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  sensitive: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
});
const IdParams = Type.Object({ id: Type.String({ pattern: FILE_ID_PATTERN, description: 'File id (UUID)' }) });
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorResponse]));
const Sensitive = Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')]));

/** Multipart errors of @fastify/multipart mapped to the contract's codes (FU-02, FU-13). */
const MULTIPART_LIMITS: Record<string, string> = {
  FST_PARTS_LIMIT: 'Too many parts in the form',
  FST_FILES_LIMIT: 'Send one file per request',
  FST_FIELDS_LIMIT: 'Too many fields in the form',
  FST_PROTO_VIOLATION: 'Field names like __proto__ are not allowed',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'Send the file as multipart/form-data',
  FST_INVALID_JSON_FIELD_ERROR: 'A form field is malformed',
};

function multipartError(err: unknown): unknown {
  const code = (err as { code?: string } | null)?.code;
  if (code && MULTIPART_LIMITS[code]) return new BadMultipart(MULTIPART_LIMITS[code]);
  if (err instanceof Error && /Unexpected end of (form|multipart data)|Malformed part header|Multipart: Boundary not found|Part terminated early/i.test(err.message)) {
    return new BadMultipart('The multipart body is malformed');
  }
  return err;
}

export interface FilesRoutesOptions {
  service: FilesService;
  config: UploadConfig;
  uploads: Counter<'outcome'>;
}

export const filesRoutes: FastifyPluginAsyncTypebox<FilesRoutesOptions> = async (app, { service, config, uploads }) => {
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

  app.post(
    '/',
    {
      config: { rateLimit },
      bodyLimit: config.MAX_UPLOAD_BYTES + 1024 * 1024,
      schema: {
        summary: 'Upload one file (multipart: optional field "sensitive" before the "file" part)',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        querystring: Type.Object({ sensitive: Sensitive }),
        response: { 201: FileView, ...errors(400, 401, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const length = Number(request.headers['content-length']);
      const userId = request.user.sub;
      let reserved = 0;
      let sensitive = request.query.sensitive === 'true';
      let stored: ReturnType<typeof toView> | undefined;
      try {
        reserved = await service.reserve(userId, Number.isFinite(length) ? length : undefined);
        for await (const part of request.parts({ limits })) {
          if (part.type === 'field') {
            if (part.fieldname !== 'sensitive' || stored) throw new BadMultipart(`Unexpected field "${part.fieldname}"`);
            if (part.value !== 'true' && part.value !== 'false') throw new BadMultipart('"sensitive" must be true or false');
            sensitive = part.value === 'true';
            continue;
          }
          const file = part as MultipartFile;
          if (file.fieldname !== 'file') throw new BadMultipart(`The file must be in a field named "file", not "${file.fieldname}"`);
          const record = await service.upload(userId, { filename: file.filename, stream: file.file, sensitive }, reserved);
          await service.settle(userId, reserved, record.size);
          reserved = 0;
          stored = toView(record);
        }
        if (!stored) throw new NoFile();
      } catch (err) {
        const mapped = multipartError(err);
        if (reserved) await service.release(userId, reserved);
        if (stored) {
          // The file is stored but the rest of the request was bad: undo it, nothing half-done stays.
          await service.delete(userId, stored.id).catch(() => undefined);
        }
        uploads.inc({ outcome: (mapped as { code?: string }).code ?? 'error' });
        request.audit('upload', 'failure', { reason: (mapped as { code?: string }).code ?? 'error' });
        throw mapped;
      }
      uploads.inc({ outcome: 'success' });
      request.audit('upload', 'success', { fileId: stored.id, size: stored.size, sensitive: stored.sensitive });
      return reply.status(201).send(stored);
    },
  );

  app.get(
    '/',
    {
      schema: {
        summary: "The caller's files, newest first",
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
          cursor: Type.Optional(Type.String({ pattern: FILE_ID_PATTERN })),
        }),
        response: { 200: Type.Object({ items: Type.Array(FileView), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401) },
      },
    },
    async (request) => service.list(request.user.sub, request.query.limit, request.query.cursor),
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
          ...errors(401),
        },
      },
    },
    async (request) => ({
      usedBytes: await service.usedBytes(request.user.sub),
      quotaBytes: config.QUOTA_BYTES,
      maxUploadBytes: config.MAX_UPLOAD_BYTES,
      directUploadAboveBytes: config.DIRECT_UPLOAD_ABOVE_BYTES,
      allowedTypes: [...service.allowed.keys()],
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
        response: { 200: FileView, ...errors(400, 401, 404) },
      },
    },
    async (request) => toView(await service.get(request.user.sub, request.params.id)),
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
          ...errors(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const url = await service.downloadUrl(request.user.sub, request.params.id);
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
        response: { 204: Type.Null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await service.delete(request.user.sub, request.params.id);
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
          ...errors(400, 401, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      try {
        const out = await service.presign(request.user.sub, request.body);
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
        summary: 'Verify a direct upload (size, content type, SHA-256) and make it a file',
        tags: ['files'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 201: FileView, ...errors(400, 401, 404, 415) },
      },
    },
    async (request, reply) => {
      try {
        const record = await service.complete(request.user.sub, request.params.id);
        request.audit('upload', 'success', { fileId: record.fileId, size: record.size, direct: true });
        return reply.status(201).send(toView(record));
      } catch (err) {
        request.audit('upload', 'failure', { fileId: request.params.id, direct: true, reason: (err as { code?: string }).code ?? 'error' });
        throw err;
      }
    },
  );
};
