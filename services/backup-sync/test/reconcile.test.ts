import { loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { provision, ResourceNames } from '@scs/local-stack/provision';
import { asEnv, type BackupWorld, backupWorld, headOrNothing, testAws } from './helpers';

let world: BackupWorld;
beforeAll(async () => {
  world = await backupWorld('reconcile');
});
afterAll(() => world.close());

async function reconcile(app: FastifyInstance) {
  const res = await app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: await world.admin() });
  expect(res.statusCode).toBe(200);
  return res.json<{ scanned: number; copied: number; alreadyInSync: number; failed: number; durationMs: number }>();
}

/** Counts the S3 requests a client sends, by command. */
function countingClients() {
  const aws = testAws();
  const counts: Record<string, number> = {};
  aws.s3.middlewareStack.add(
    (next, context) => async (args) => {
      counts[context.commandName as string] = (counts[context.commandName as string] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  return { aws, counts };
}

describe('reconciliation', () => {
  it('R6: with the backup target unavailable uploads still succeed; once it is back, a reconcile leaves zero difference', async () => {
    // The backup bucket of this instance does not exist yet: the target is unavailable.
    const late = `t-recon-late-${randomBytes(3).toString('hex')}`;
    const app = await world.backupApp({ BACKUP_BUCKET: late });
    const user = await world.user();
    const files = [];
    for (let i = 0; i < 5; i += 1) {
      files.push(await world.upload(user.headers, { name: `r6-${i}.txt`, content: Buffer.from(`file number ${i} ${randomBytes(8).toString('hex')}`), sensitive: i === 4 }));
    }
    const down = await app.backup.reconciler.run().catch((err: unknown) => err);
    expect(down).toMatchObject({ name: 'NoSuchBucket' });

    // The target comes back (as provisioning creates it), and the next reconcile catches up.
    const aws = testAws();
    try {
      await provision(aws, loadConfig(ResourceNames, { ...process.env, ...asEnv(world.names), BACKUP_BUCKET: late }));
    } finally {
      aws.destroy();
    }
    const first = await reconcile(app);
    expect(first).toMatchObject({ scanned: 5, copied: 5, failed: 0 });
    const second = await reconcile(app);
    expect(second).toMatchObject({ scanned: 5, copied: 0, alreadyInSync: 5, failed: 0 });
    for (const f of files) expect(await headOrNothing(world.aws, late, f.key)).toMatchObject({ ServerSideEncryption: 'aws:kms' });
    const sensitive = await headOrNothing(world.aws, late, files[4]?.key ?? '');
    expect(sensitive?.SSEKMSKeyId).toBe(world.names.SENSITIVE_KMS_KEY_ID);
  });

  it('R6: the cost of a reconcile grows with the objects listed, not with copies in sync: list calls only, no copy or read', async () => {
    const { aws, counts } = countingClients();
    try {
      const app = await world.backupApp({}, { aws });
      await reconcile(app);
      for (const k of Object.keys(counts)) delete counts[k];
      const result = await reconcile(app);
      expect(result).toMatchObject({ copied: 0, failed: 0 });
      expect(result.alreadyInSync).toBe(result.scanned);
      // One page per bucket (primary, sensitive, backup) and one for the retained deleted files.
      expect(counts).toEqual({ ListObjectsV2Command: 4 });
    } finally {
      aws.destroy();
    }
  });

  it("retention: a deleted file's backup (its delete event missed) is retired by the reconcile and removed after BACKUP_RETENTION_DAYS", async () => {
    const app = await world.backupApp();
    const user = await world.user();
    const file = await world.upload(user.headers, { name: 'old.txt', content: Buffer.from('old news') });
    await reconcile(app);
    expect(await headOrNothing(world.aws, world.names.BACKUP_BUCKET, file.key)).toBeDefined();
    expect((await world.uploadApp.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: user.headers })).statusCode).toBe(204);

    await reconcile(app);
    expect(await headOrNothing(world.aws, world.names.BACKUP_BUCKET, file.key)).toBeUndefined();
    expect(await headOrNothing(world.aws, world.names.BACKUP_BUCKET, `deleted/${file.key}`)).toBeDefined();

    // Within the retention period it stays; after it, it goes.
    expect(await app.backup.backups.expire(new Date(Date.now() + 29 * 86_400_000))).toBe(0);
    expect(await app.backup.backups.expire(new Date(Date.now() + 31 * 86_400_000))).toBeGreaterThanOrEqual(1);
    expect(await headOrNothing(world.aws, world.names.BACKUP_BUCKET, `deleted/${file.key}`)).toBeUndefined();
  });

  it('concurrent reconcile requests share one run', async () => {
    const app = await world.backupApp();
    const admin = await world.admin();
    const results = await Promise.all([1, 2, 3].map(() => app.inject({ method: 'POST', url: '/api/backup/reconcile', headers: admin })));
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(new Set(results.map((r) => r.body)).size).toBe(1);
  });
});
