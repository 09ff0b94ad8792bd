import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses } from '@scs/common';
import { FileView, fileView } from '@scs/common/files';
import { Type } from '@sinclair/typebox';
import { BackupNotFound } from '../errors';
import type { BackupService } from '../services/backup-service';

const Uuid = (description: string) => Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', description });

const ReconcileResult = Type.Object({
  scanned: Type.Integer({ description: 'File objects listed in the primary and sensitive buckets' }),
  copied: Type.Integer({ description: 'Missing or stale backups copied (each verified by checksum)' }),
  alreadyInSync: Type.Integer(),
  failed: Type.Integer({ description: 'Repairs that failed; the next reconciliation tries again' }),
  durationMs: Type.Integer(),
});
const LastReconcile = Type.Composite([
  ReconcileResult,
  Type.Object({
    pending: Type.Integer({ description: 'Files the upload service had not finished yet' }),
    retired: Type.Integer({ description: 'Backups of deleted files moved to retention' }),
    expired: Type.Integer({ description: 'Backups of deleted files removed after the retention period' }),
    finishedAt: Type.String({ format: 'date-time' }),
  }),
]);
const Status = Type.Object({
  primaryObjects: Type.Integer({ description: 'File objects in the primary bucket now' }),
  sensitiveObjects: Type.Integer({ description: 'File objects in the sensitive bucket now' }),
  backupObjects: Type.Integer({ description: 'Backups of live files now (backups of deleted files kept for retention are not counted)' }),
  pending: Type.Integer({ description: 'Object events waiting in the queue or being handled' }),
  lastEventAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastReconcile: Type.Union([LastReconcile, Type.Null()]),
});
const UsageReconcileResult = Type.Object({
  users: Type.Integer({ description: 'Users whose usage was checked' }),
  corrected: Type.Integer({ description: 'Users whose counters differed from their records and were rewritten' }),
  releasedReservations: Type.Integer({ description: 'Reservations of uploads that no longer exist, released' }),
  releasedBytes: Type.Integer(),
  failed: Type.Integer({ description: 'Users whose check failed (logged); the next run tries again' }),
  durationMs: Type.Integer(),
});
/** A restored file as the upload API shows it, with its owner. */
const RestoredFile = Type.Composite([FileView, Type.Object({ userId: Type.String({ description: 'The owner (unchanged)' }) })]);

/** The admin API under /api/backup: every route admin-only (401 anonymous, 403 other users). */
export const backupRoutes: FastifyPluginAsyncTypebox<{ service: BackupService }> = async (app, { service }) => {
  const admin = { roles: ['admin' as const] };
  const security = [{ bearerAuth: [] }];

  app.get(
    '/status',
    {
      config: admin,
      schema: { summary: 'Object counts, queue backlog, last event and last reconciliation', tags: ['backup'], security, response: { 200: Status, ...errorResponses(401, 403, 503) } },
    },
    async () => service.status(),
  );

  app.post(
    '/reconcile',
    {
      config: admin,
      schema: {
        summary: 'Compare every file with its backup now and repair the differences (joins a run under way)',
        tags: ['backup'],
        security,
        response: { 200: ReconcileResult, ...errorResponses(401, 403, 503) },
      },
    },
    async (request) => {
      const result = await service.reconcile();
      request.audit('backup.reconcile', 'success', { scanned: result.scanned, copied: result.copied, failed: result.failed });
      return result;
    },
  );

  app.post(
    '/usage/reconcile',
    {
      config: admin,
      schema: {
        summary: "Recompute quota usage from the records: every user's, or one user's",
        description:
          'Releases the quota reservations of uploads that no longer exist (their process was killed: no renewal within ' +
          'RESERVATION_LEASE_SECONDS), then sets each user\'s used bytes to the sum of their files and reserved bytes to the ' +
          'uploads still under way. Safe while uploads run. Also runs every USAGE_RECONCILE_INTERVAL_SECONDS.',
        tags: ['backup'],
        security,
        body: Type.Optional(Type.Object({ userId: Type.Optional(Uuid('Only this user')) }, { additionalProperties: false })),
        response: { 200: UsageReconcileResult, ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const result = await service.reconcileUsage(request.body?.userId);
      request.audit('usage.reconcile', 'success', { ...result });
      return result;
    },
  );

  app.post(
    '/restore',
    {
      config: admin,
      schema: {
        summary: "Put a file back from its backup: object and record, owner unchanged, counted in the owner's quota",
        tags: ['backup'],
        security,
        body: Type.Object({ userId: Uuid('The owner'), fileId: Uuid('The file') }, { additionalProperties: false }),
        description:
          "404 BACKUP_NOT_FOUND: no backup of that file for that owner; 404 ACCOUNT_NOT_FOUND: the owner's account no longer exists (nothing is recreated); " +
          '409 DELETE_IN_PROGRESS: the owner is deleting the file right now (nothing was restored; retry).',
        response: { 200: RestoredFile, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const { userId, fileId } = request.body;
      const restored = await service.restore(userId, fileId);
      if (!restored) {
        request.audit('backup.restore', 'failure', { ownerId: userId, fileId, reason: 'BACKUP_NOT_FOUND' });
        throw new BackupNotFound();
      }
      const r = restored.record;
      request.audit('backup.restore', 'success', { ownerId: userId, fileId, restoredObject: restored.restoredObject, sensitive: r.sensitive });
      return { ...fileView(r), userId: r.userId };
    },
  );
};
