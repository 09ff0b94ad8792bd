import { DeleteCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageRepository } from '@scs/common/files';
import { loadConfig } from '@scs/common';
import { buildApp as buildUpload } from '@scs/upload';
import { UploadConfig } from '@scs/upload/config';
import { asEnv, type BackupWorld, backupWorld, testAws, until } from './helpers';

let world: BackupWorld;
let app: FastifyInstance;
let uploadUrl: URL;
beforeAll(async () => {
  world = await backupWorld('usage');
  app = await world.backupApp();
  await world.uploadApp.listen({ port: 0, host: '127.0.0.1' });
  uploadUrl = new URL(`http://127.0.0.1:${(world.uploadApp.server.address() as AddressInfo).port}`);
});
afterAll(() => world.close());

const nowSeconds = () => Math.floor(Date.now() / 1000);

async function reconcile(body: object = {}) {
  return app.inject({ method: 'POST', url: '/api/backup/usage/reconcile', headers: await world.admin(), payload: body });
}

/** What the records say: the sizes of the user's files, and the reservation items left. */
async function truth(userId: string): Promise<{ files: number; reservations: number }> {
  const out = await world.aws.dynamo.send(
    new QueryCommand({ TableName: world.names.FILES_TABLE, KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': userId }, ConsistentRead: true }),
  );
  let files = 0;
  let reservations = 0;
  for (const item of out.Items ?? []) {
    if (item.status === 'active') files += Number(item.size);
    if (String(item.fileId).startsWith('#reservation#')) reservations += 1;
  }
  return { files, reservations };
}

/**
 * A streamed upload over a real connection whose body is sent in two halves: `between` runs after
 * the first half, while the upload holds its reservation. Resolves with the status.
 */
function uploadInTwoHalves(headers: Record<string, string>, content: Buffer, between: () => Promise<void>, base = uploadUrl): Promise<number> {
  const boundary = `----scs${randomUUID()}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.txt"\r\nContent-Type: text/plain\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const half = Math.floor(content.length / 2);
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL('/api/files', base), {
      method: 'POST',
      headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + content.length + tail.length },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(Buffer.concat([head, content.subarray(0, half)]));
    between().then(
      () => req.end(Buffer.concat([content.subarray(half), tail])),
      (err: unknown) => {
        req.destroy();
        reject(err);
      },
    );
  });
}

describe('usage reconciliation', () => {
  it('R16: a reservation whose upload died (never renewed past its lease) is released, and usage equals the sum of the records', async () => {
    const user = await world.user();
    const a = await world.upload(user.headers, { name: 'a.txt', content: Buffer.from('first file') });
    await world.upload(user.headers, { name: 'b.txt', content: Buffer.alloc(5000, 'b') });
    // What a killed upload process leaves: a reservation nobody renews (its lease ran out a second ago).
    expect(await world.usage.reserve(user.userId, 70_000, 1_000_000_000, nowSeconds() - 1)).toBeDefined();
    expect(await world.usage.usage(user.userId)).toEqual({ usedBytes: 5000 + a.size, reservedBytes: 70_000 });

    const res = await reconcile({ userId: user.userId });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ users: 1, releasedReservations: 1, releasedBytes: 70_000, failed: 0 });
    expect(await world.usage.usage(user.userId)).toEqual({ usedBytes: (await truth(user.userId)).files, reservedBytes: 0 });
    expect(await truth(user.userId)).toEqual({ files: 5000 + a.size, reservations: 0 });
  });

  it('counters that drifted from the records (a settlement lost to a crash) are rewritten by the scheduled run over every user', async () => {
    const user = await world.user();
    await world.upload(user.headers, { name: 'c.txt', content: Buffer.alloc(1234, 'c') });
    // Bytes counted for a record that goes missing, and a reservation counted without its item.
    const lost = randomUUID();
    await world.files.createActive(
      { userId: user.userId, fileId: lost, name: 'x.txt', size: 10, contentType: 'text/plain', sha256: 'f'.repeat(64), sensitive: false, status: 'active', key: 'k', createdAt: new Date().toISOString() },
      0,
    );
    await world.aws.dynamo.send(new DeleteCommand({ TableName: world.names.FILES_TABLE, Key: { userId: user.userId, fileId: lost } }));
    const drift = await world.usage.reserve(user.userId, 999, 1_000_000_000, nowSeconds() + 600);
    // The reservation item vanishes without its counter (as a half-applied write would leave it).
    await world.aws.dynamo.send(new DeleteCommand({ TableName: world.names.FILES_TABLE, Key: { userId: user.userId, fileId: `#reservation#${drift?.id}` } }));
    expect(await world.usage.usage(user.userId)).toEqual({ usedBytes: 1244, reservedBytes: 999 });

    const res = await reconcile();
    expect(res.statusCode).toBe(200);
    expect(res.json<{ users: number; corrected: number }>().users).toBeGreaterThanOrEqual(1);
    expect(res.json<{ corrected: number }>().corrected).toBeGreaterThanOrEqual(1);
    expect(await world.usage.usage(user.userId)).toEqual({ usedBytes: 1234, reservedBytes: 0 });
  });

  it('R16: a reconciliation while uploads are under way keeps their reservations, and usage is exact once they settle', async () => {
    const user = await world.user();
    const contents = Array.from({ length: 6 }, (_, i) => Buffer.alloc(40_000 + i * 1000, `${i}`));
    let reconciled = 0;
    const statuses = await Promise.all(
      contents.map((content) =>
        uploadInTwoHalves(user.headers, content, async () => {
          // Every upload holds its reservation now (the first half is in): reconcile meanwhile.
          await until(async () => (await truth(user.userId)).reservations > 0, 'the upload reserved its bytes');
          const res = await reconcile({ userId: user.userId });
          expect(res.statusCode).toBe(200);
          expect(res.json()).toMatchObject({ releasedReservations: 0, failed: 0 });
          reconciled += 1;
        }),
      ),
    );
    expect(statuses).toEqual(contents.map(() => 201));
    expect(reconciled).toBe(contents.length);
    const total = contents.reduce((n, c) => n + c.length, 0);
    expect(await truth(user.userId)).toEqual({ files: total, reservations: 0 });
    expect(await world.usage.usage(user.userId)).toEqual({ usedBytes: total, reservedBytes: 0 });
    // And a reconciliation after it all finds nothing to correct.
    expect((await reconcile({ userId: user.userId })).json()).toMatchObject({ corrected: 0, releasedReservations: 0 });
  });

  it('a live upload renews its reservation: a reconciliation after its first lease ran out keeps it', async () => {
    const shortLease = await buildUpload(
      loadConfig(UploadConfig, { ...process.env, ...asEnv(world.names), LOG_LEVEL: 'silent', UPLOADS_PER_MINUTE: '100000', RESERVATION_LEASE_SECONDS: '3' }),
      { aws: world.aws },
    );
    try {
      await shortLease.listen({ port: 0, host: '127.0.0.1' });
      const base = new URL(`http://127.0.0.1:${(shortLease.server.address() as AddressInfo).port}`);
      const user = await world.user();
      const content = Buffer.alloc(30_000, 'l');
      const status = await uploadInTwoHalves(
        user.headers,
        content,
        async () => {
          const held = async () => {
            const out = await world.aws.dynamo.send(
              new QueryCommand({
                TableName: world.names.FILES_TABLE,
                KeyConditionExpression: 'userId = :u AND begins_with(fileId, :r)',
                ExpressionAttributeValues: { ':u': user.userId, ':r': '#reservation#' },
                ConsistentRead: true,
              }),
            );
            return Number(out.Items?.[0]?.until ?? 0);
          };
          await until(async () => (await held()) > 0, 'the upload reserved its bytes');
          const first = await held();
          // The upload renews its lease (every third of it) while its body is still coming.
          await until(async () => (await held()) > first, 'the upload renewed its reservation');
          // A reconciliation at the moment its first lease ran out: the reservation is alive.
          const one = await world.usage.reconcile(user.userId, first + 1);
          expect(one.releasedReservations).toBe(0);
          expect(one.after.reservedBytes).toBeGreaterThan(0);
        },
        base,
      );
      expect(status).toBe(201);
      expect(await world.usage.usage(user.userId)).toEqual({ usedBytes: content.length, reservedBytes: 0 });
    } finally {
      await shortLease.close();
    }
  });

  it('reconciliations racing settlements and releases never leave usage off', async () => {
    const userId = randomUUID();
    const record = (size: number) => ({
      userId,
      fileId: randomUUID(),
      name: 'r.txt',
      size,
      contentType: 'text/plain',
      sha256: 'a'.repeat(64),
      sensitive: false,
      status: 'active' as const,
      key: 'k',
      createdAt: new Date().toISOString(),
    });
    await world.usage.reserve(userId, 1, 1_000_000_000, nowSeconds() + 600).then((r) => r && world.usage.release(r));
    let stop = false;
    const reconciling = (async () => {
      let runs = 0;
      while (!stop || runs === 0) {
        await world.usage.reconcile(userId, nowSeconds());
        runs += 1;
      }
      return runs;
    })();
    let expected = 0;
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const r = await world.usage.reserve(userId, 1000 + i, 1_000_000_000, nowSeconds() + 600);
        if (!r) throw new Error('reserve refused');
        if (i % 3 === 0) return world.usage.release(r);
        const size = 500 + i;
        expected += size;
        expect(await world.files.createActive(record(size), r)).toBe(true);
      }),
    );
    stop = true;
    expect(await reconciling).toBeGreaterThan(0);
    expect(await world.usage.usage(userId)).toEqual({ usedBytes: expected, reservedBytes: 0 });
    expect((await world.usage.reconcile(userId, nowSeconds())).corrected).toBe(false);
  });

  it('a settlement that lands between the reconciliation\'s reading and its rewrite makes it compute again (nothing counted twice)', async () => {
    const userId = randomUUID();
    const other = await world.usage.reserve(userId, 5000, 1_000_000_000, nowSeconds() + 600);
    if (!other) throw new Error('reserve refused');
    // Counters that disagree with the records, so the reconciliation has something to rewrite.
    await world.files.createActive(
      { userId, fileId: randomUUID(), name: 'd.txt', size: 300, contentType: 'text/plain', sha256: 'd'.repeat(64), sensitive: false, status: 'active', key: 'k', createdAt: new Date().toISOString() },
      0,
    );
    const lost = randomUUID();
    await world.files.createActive(
      { userId, fileId: lost, name: 'e.txt', size: 77, contentType: 'text/plain', sha256: 'e'.repeat(64), sensitive: false, status: 'active', key: 'k', createdAt: new Date().toISOString() },
      0,
    );
    await world.aws.dynamo.send(new DeleteCommand({ TableName: world.names.FILES_TABLE, Key: { userId, fileId: lost } }));
    // The reconciliation's client: just before its first rewrite, the other upload settles.
    const clients = testAws();
    let settledMeanwhile = false;
    clients.dynamo.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { UpdateExpression?: string };
        if (!settledMeanwhile && input.UpdateExpression?.startsWith('SET usedBytes')) {
          settledMeanwhile = true;
          const record = { userId, fileId: randomUUID(), name: 'f.txt', size: 4000, contentType: 'text/plain', sha256: 'f'.repeat(64), sensitive: false, status: 'active' as const, key: 'k', createdAt: new Date().toISOString() };
          expect(await world.files.createActive(record, other)).toBe(true);
        }
        return next(args);
      },
      { step: 'initialize', name: 'settleDuringReconcile' },
    );
    try {
      const reconciling = new UsageRepository(clients.dynamo, world.names.FILES_TABLE, { warn: () => undefined, error: () => undefined });
      expect((await reconciling.reconcile(userId, nowSeconds())).corrected).toBe(true);
      expect(settledMeanwhile).toBe(true);
      expect(await world.usage.usage(userId)).toEqual({ usedBytes: 4300, reservedBytes: 0 });
    } finally {
      clients.destroy();
    }
  });

  it('an upload that settles after the reconciliation released its reservation (it stalled past its lease) is counted once', async () => {
    const userId = randomUUID();
    const reservation = await world.usage.reserve(userId, 8000, 1_000_000_000, nowSeconds() - 1);
    if (!reservation) throw new Error('reserve refused');
    expect((await world.usage.reconcile(userId, nowSeconds())).releasedReservations).toBe(1);
    const size = 7000;
    const ok = await world.files.createActive(
      { userId, fileId: randomUUID(), name: 's.txt', size, contentType: 'text/plain', sha256: 'b'.repeat(64), sensitive: false, status: 'active', key: 'k', createdAt: new Date().toISOString() },
      reservation,
    );
    expect(ok).toBe(true);
    expect(await world.usage.usage(userId)).toEqual({ usedBytes: size, reservedBytes: 0 });
    await world.usage.release(reservation);
    expect(await world.usage.usage(userId)).toEqual({ usedBytes: size, reservedBytes: 0 });
  });

  it('FU-03: the file count heals like the bytes: an expired reservation gives its file back, and the counts are recomputed from the records', async () => {
    const userId = randomUUID();
    const { files, usage } = world;
    const record = (fileId: string, size: number, status: 'active' | 'pending') => ({
      userId,
      fileId,
      name: 'n.txt',
      size,
      contentType: 'text/plain',
      sha256: 'c'.repeat(64),
      sensitive: false,
      status,
      key: `users/${userId}/${fileId}`,
      createdAt: new Date().toISOString(),
      ...(status === 'pending' ? { expiresAt: nowSeconds() + 3600 } : {}),
    });
    // A streamed upload whose process died (its lease is over) and a zero-byte pending direct upload: two files held of two.
    expect(await usage.reserve(userId, 500, 1_000_000, nowSeconds() - 1, 2)).toBeDefined();
    expect(await files.createPending(record(randomUUID(), 0, 'pending'), 1_000_000, 2)).toBe(true);
    expect(await files.createPending(record(randomUUID(), 0, 'pending'), 1_000_000, 2)).toBe(false);
    expect(await usage.fileCounts(userId)).toEqual({ usedFiles: 0, reservedFiles: 2, committedFiles: 2 });

    // The dead upload's reservation is released with its file; the pending upload keeps its one.
    const released = await usage.reconcile(userId, nowSeconds());
    expect(released).toMatchObject({ releasedReservations: 1, releasedBytes: 500, after: { usedFiles: 0, reservedFiles: 1, usedBytes: 0, reservedBytes: 0 } });
    expect(await usage.fileCounts(userId)).toEqual({ usedFiles: 0, reservedFiles: 1, committedFiles: 1 });

    const stored = record(randomUUID(), 300, 'active');
    expect(await files.createActive(stored, 0)).toBe(true);
    // Counters that drifted (a write lost before this layout, a hand edit) are put right from the records.
    await world.aws.dynamo.send(
      new UpdateCommand({
        TableName: world.names.FILES_TABLE,
        Key: { userId, fileId: '#usage' },
        UpdateExpression: 'SET usedFiles = :u, reservedFiles = :r, committedFiles = :c',
        ExpressionAttributeValues: { ':u': 40, ':r': 9, ':c': 49 },
      }),
    );
    const corrected = await usage.reconcile(userId, nowSeconds());
    expect(corrected).toMatchObject({ corrected: true, before: { usedFiles: 40, reservedFiles: 9 }, after: { usedFiles: 1, reservedFiles: 1, usedBytes: 300 } });
    expect(await usage.fileCounts(userId)).toEqual({ usedFiles: 1, reservedFiles: 1, committedFiles: 2 });

    // A delete frees the stored file, a restore counts it again, each in its transaction.
    expect(await files.beginDelete(stored, nowSeconds() + 60)).toBe(true);
    expect(await files.finishDelete(stored)).toBe(true);
    expect(await usage.fileCounts(userId)).toEqual({ usedFiles: 0, reservedFiles: 1, committedFiles: 1 });
    expect(await files.restore(stored)).toBe(true);
    expect(await usage.fileCounts(userId)).toEqual({ usedFiles: 1, reservedFiles: 1, committedFiles: 2 });
    expect((await usage.reconcile(userId, nowSeconds())).corrected).toBe(false);
  });

  it('is admin-only: 403 for a user, 401 anonymous', async () => {
    const user = await world.user();
    expect((await app.inject({ method: 'POST', url: '/api/backup/usage/reconcile', headers: user.headers, payload: {} })).statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: '/api/backup/usage/reconcile', payload: {} })).statusCode).toBe(401);
    expect((await reconcile({ userId: 'not-a-uuid' })).json()).toMatchObject({ statusCode: 400 });
  });
});
