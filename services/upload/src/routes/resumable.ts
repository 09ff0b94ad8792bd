import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses } from '@scs/common';
import { fileView } from '@scs/common/files';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { UploadConfig } from '../config';
import { FILE_ID_PATTERN } from '../files/ids';
import { MAX_PARTS, type ResumableUploads } from '../files/resumable-uploads';
import { UploadedFile } from './files';

/** A SHA-256 in hex (64 digits) or base64 (44 characters). */
const SHA256_PATTERN = '^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$';

const IdParams = Type.Object({ id: Type.String({ pattern: FILE_ID_PATTERN, description: 'Upload id (UUID; the file id once completed)' }) });

const UploadView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String({ description: 'The name the file will have' }),
  size: Type.Integer({ minimum: 1, description: 'Declared size, in bytes' }),
  partSize: Type.Integer({ description: 'Bytes of every part but the last (which has the rest)' }),
  partCount: Type.Integer({ minimum: 1, maximum: MAX_PARTS }),
  sensitive: Type.Boolean(),
  expiresAt: Type.String({ format: 'date-time', description: 'When the unfinished upload is aborted and its reservation released' }),
});

export interface ResumableRoutesOptions {
  resumable: ResumableUploads;
  config: UploadConfig;
}

/**
 * Resumable direct uploads under /api/files/uploads: the browser sends the parts straight to S3
 * through presigned part URLs; these routes start, describe, list, complete and cancel uploads.
 */
export const resumableRoutes: FastifyPluginAsyncTypebox<ResumableRoutesOptions> = async (app, opts) => {
  const { resumable, config } = opts;
  const rateLimit = { max: config.UPLOADS_PER_MINUTE, timeWindow: 60_000 };
  /** Runs `run`, writing a failure audit line when it throws. */
  const audited = async <T>(request: FastifyRequest, action: string, details: Record<string, string>, run: () => Promise<T>) => {
    try {
      return await run();
    } catch (err) {
      request.audit(action, 'failure', { ...details, reason: (err as { code?: string }).code ?? 'error' });
      throw err;
    }
  };

  app.post(
    '/',
    {
      config: { rateLimit },
      schema: {
        summary: 'Start a resumable direct upload (a multipart upload straight to S3)',
        description:
          'Reserves the quota for `size` and starts a multipart upload; the service chooses the part size (at least 8 MiB, at most 10,000 parts). ' +
          "The file's SHA-256 may be given in `checksum` here or at complete; above 5 GiB one of the two is needed.",
        tags: ['uploads'],
        security: [{ bearerAuth: [] }],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 1024 }),
            size: Type.Integer({ minimum: 1, description: 'Bytes; at most MAX_DIRECT_UPLOAD_BYTES' }),
            contentType: Type.String({ minLength: 1, maxLength: 200 }),
            sensitive: Type.Boolean({ default: false }),
            checksum: Type.Optional(
              Type.String({ pattern: SHA256_PATTERN, description: "The whole file's SHA-256, hex or base64: checked at complete" }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: UploadView, ...errorResponses(400, 401, 408, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const out = await audited(request, 'upload-start', { direct: 'multipart' }, () => resumable.create(request.user.sub, request.body));
      request.audit('upload-start', 'success', { fileId: out.id, size: out.size, direct: 'multipart' });
      return reply.status(201).send(out);
    },
  );

  app.get(
    '/',
    {
      schema: {
        summary: "The caller's unfinished resumable uploads",
        tags: ['uploads'],
        security: [{ bearerAuth: [] }],
        response: { 200: Type.Object({ items: Type.Array(UploadView) }), ...errorResponses(401) },
      },
    },
    async (request) => ({ items: await resumable.list(request.user.sub) }),
  );

  app.get(
    '/:id',
    {
      schema: {
        summary: 'An unfinished upload and the parts S3 holds of it now',
        tags: ['uploads'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: {
          200: Type.Composite([
            UploadView,
            Type.Object({ parts: Type.Array(Type.Object({ partNumber: Type.Integer(), size: Type.Integer(), etag: Type.String() })) }),
          ]),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request) => resumable.describe(request.user.sub, request.params.id),
  );

  app.post(
    '/:id/parts',
    {
      schema: {
        summary: 'Presigned PUT URLs for parts, each signed for its SHA-256',
        description:
          'Send each part with a `PUT` of exactly its bytes to `url`, with `headers` as given: S3 refuses a body whose SHA-256 differs. ' +
          'Ask again for a part whose URL was refused (expired or forbidden): a fresh one is signed every time.',
        tags: ['uploads'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        body: Type.Object(
          {
            parts: Type.Array(
              Type.Object(
                { partNumber: Type.Integer(), checksum: Type.String({ maxLength: 100, description: "The part's SHA-256, base64" }) },
                { additionalProperties: false },
              ),
              { minItems: 1, maxItems: 1000 },
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            parts: Type.Array(
              Type.Object({
                partNumber: Type.Integer(),
                url: Type.String(),
                headers: Type.Record(Type.String(), Type.String()),
                expiresAt: Type.String({ format: 'date-time' }),
              }),
            ),
          }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return { parts: await resumable.presignParts(request.user.sub, request.params.id, request.body.parts) };
    },
  );

  app.post(
    '/:id/complete',
    {
      schema: {
        summary: 'Complete a resumable upload and make it a file',
        description:
          'Every part must be in S3 at its size (400 UPLOAD_INCOMPLETE). The object is checked (size, attributes, type from its first bytes: 415 deletes it), ' +
          'S3 computes its SHA-256 (compared with a declared one: 400 UPLOAD_MISMATCH), and the file is recorded. 409 ALREADY_COMPLETED on a repeat, ' +
          '409 UPLOAD_IN_PROGRESS while another request completes it. The body is optional: `checksum`, the file\'s SHA-256, when it was not given at create ' +
          '(above 5 GiB one is needed: 400 VALIDATION_FAILED without it, and the upload stays as it was).',
        tags: ['uploads'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        body: Type.Union(
          [
            Type.Object(
              { checksum: Type.Optional(Type.String({ pattern: SHA256_PATTERN, description: "The whole file's SHA-256, hex or base64" })) },
              { additionalProperties: false },
            ),
            Type.Null(),
          ],
          { description: 'Optional' },
        ),
        response: { 201: UploadedFile, ...errorResponses(400, 401, 404, 409, 415, 503) },
      },
    },
    async (request, reply) => {
      const record = await audited(request, 'upload', { fileId: request.params.id, direct: 'multipart' }, () =>
        resumable.complete(request.user.sub, request.params.id, request.body?.checksum),
      );
      request.audit('upload', 'success', { fileId: record.fileId, size: record.size, direct: 'multipart' });
      return reply.status(201).send(fileView(record));
    },
  );

  app.delete(
    '/:id',
    {
      schema: {
        summary: 'Cancel an unfinished upload: its multipart upload is aborted and its reservation released',
        description:
          '404 when the caller has no unfinished upload by that id (a repeat, an expired one, or one completed already: the file stays). ' +
          'A cancel wins over a `/complete` still under way: that `/complete` answers 404 and nothing of the upload stays.',
        tags: ['uploads'],
        security: [{ bearerAuth: [] }],
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await audited(request, 'upload-cancel', { fileId: request.params.id }, () => resumable.abort(request.user.sub, request.params.id));
      request.audit('upload-cancel', 'success', { fileId: request.params.id });
      return reply.status(204).send(null);
    },
  );
};
