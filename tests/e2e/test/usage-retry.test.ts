import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { FileRepository, type Reservation, UsageRepository } from '@scs/common/files';
import { randomUUID } from 'node:crypto';
import { ResourceNames } from '@scs/local-stack/provision';
import { FaultProxy } from '@scs/testing/fault-proxy';

/**
 * R1: a quota reservation given back while DynamoDB is unreachable must not stay reserved for
 * ever (the user could no longer upload what their quota allows). The repository's client goes
 * through a fault proxy in front of the tests' emulator (global setup), stopped and started again.
 */
describe('usage updates during a DynamoDB outage', () => {
  let direct: AwsClients;
  let proxied: AwsClients;
  let proxy: FaultProxy;
  let names: ResourceNames;
  const warnings: string[] = [];
  const errors: string[] = [];
  const log = { warn: (_: object, msg: string) => void warnings.push(msg), error: (_: object, msg: string) => void errors.push(msg) };

  beforeAll(async () => {
    const endpoint = new URL(process.env.AWS_ENDPOINT_URL ?? '');
    proxy = new FaultProxy({ host: endpoint.hostname, port: Number(endpoint.port) });
    await proxy.start();
    const settings = { AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: 2, AWS_REQUEST_TIMEOUT_MS: 5_000 };
    direct = createAwsClients({ ...settings, AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL });
    proxied = createAwsClients({ ...settings, AWS_ENDPOINT_URL: proxy.url });
    names = loadConfig(ResourceNames, process.env);
  });
  afterAll(async () => {
    await proxy.stop();
    direct.destroy();
    proxied.destroy();
  });
  beforeEach(() => {
    warnings.length = 0;
    errors.length = 0;
  });

  it('R1: a release that fails while DynamoDB is down is applied once it is back, exactly once', async () => {
    const userId = randomUUID();
    const observer = new UsageRepository(direct.dynamo, names.FILES_TABLE, log);
    const usage = new UsageRepository(proxied.dynamo, names.FILES_TABLE, log);
    const until = Math.floor(Date.now() / 1000) + 600;
    const first = await usage.reserve(userId, 5000, 1_000_000, until);
    expect(first).toBeDefined();
    expect(await usage.reserve(userId, 700, 1_000_000, until)).toBeDefined();

    await proxy.stop();
    await expect(usage.release(first as NonNullable<typeof first>)).resolves.toBeUndefined();
    expect(warnings).toContain('a usage counter update failed; retrying it in the background');
    expect(await observer.usage(userId)).toEqual({ usedBytes: 0, reservedBytes: 5700 });

    await proxy.start();
    await usage.settled(60_000);
    expect(await observer.usage(userId)).toEqual({ usedBytes: 0, reservedBytes: 700 });
    expect(warnings).toContain('a usage counter update went through on a retry');
    expect(errors).toEqual([]);
  });

  it('a release still failing when the service shuts down is given up within the wait and logged for an operator', async () => {
    // A logger of its own: an attempt already on its way when the wait ends may still finish (and
    // log) after this test, once DynamoDB is back; its lines must not land in another test's.
    const own: string[] = [];
    const usage = new UsageRepository(proxied.dynamo, names.FILES_TABLE, { warn: () => undefined, error: (_: object, msg: string) => void own.push(msg) });
    await proxy.stop();
    try {
      await usage.release({ userId: randomUUID(), id: randomUUID(), bytes: 5000 });
      await usage.settled(300);
      expect(own).toEqual(['a usage counter update was still failing at shutdown; given up']);
    } finally {
      await proxy.start();
    }
  });

  it('a release DynamoDB refuses for good is logged for an operator and not retried', async () => {
    const usage = new UsageRepository(proxied.dynamo, 'no-such-table', log);
    await expect(usage.release({ userId: randomUUID(), id: randomUUID(), bytes: 5000 })).resolves.toBeUndefined();
    await usage.settled(60_000);
    expect(errors).toEqual(['a usage counter update failed for good']);
    expect(warnings).toEqual([]);
  });

  const record = (userId: string, size: number) => ({
    userId,
    fileId: randomUUID(),
    name: 'outage.png',
    size,
    contentType: 'image/png',
    sha256: 'a'.repeat(64),
    sensitive: false,
    status: 'active' as const,
    key: `users/${userId}/x`,
    createdAt: new Date().toISOString(),
  });

  it('R1: a file record whose transaction got no answer during an outage leaves, once DynamoDB is back, no record, nothing used or reserved', async () => {
    const userId = randomUUID();
    const observer = new FileRepository(direct.dynamo, names.FILES_TABLE, log);
    const observed = new UsageRepository(direct.dynamo, names.FILES_TABLE, log);
    const usage = new UsageRepository(proxied.dynamo, names.FILES_TABLE, log);
    const files = new FileRepository(proxied.dynamo, names.FILES_TABLE, log, usage);
    const reservation = (await usage.reserve(userId, 5000, 1_000_000, Math.floor(Date.now() / 1000) + 600)) as Reservation;
    const file = record(userId, 4000);
    await proxy.stop();
    await expect(files.createActive(file, reservation)).rejects.toThrow();
    // The failing upload gives its reservation back (Uploads.upload through Quota.release).
    await usage.release(reservation);
    await proxy.start();
    await files.settled(60_000);
    expect(await observer.get(userId, file.fileId)).toBeUndefined();
    expect(await observed.usage(userId)).toEqual({ usedBytes: 0, reservedBytes: 0 });
    expect(errors).toEqual([]);
  });

  /** Makes the proxied client lose the answers of its first `count` transactions (each attempt), after they landed. */
  function loseTransactionAnswers(count: number): { sent: () => number; restore: () => void } {
    // The emulator cannot lose an answer after it applied the transaction: the reset is injected after the attempt landed.
    let transactions = 0;
    proxied.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'TransactWriteItemsCommand' && (transactions += 1) <= count) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
        return out;
      },
      { step: 'finalizeRequest', name: 'loseAnswers' },
    );
    return { sent: () => transactions, restore: () => proxied.dynamo.middlewareStack.remove('loseAnswers') };
  }

  it('R1: a file record transaction that landed but whose answer was lost is applied once by the SDK retry under its token', async () => {
    const userId = randomUUID();
    const observer = new FileRepository(direct.dynamo, names.FILES_TABLE, log);
    const observed = new UsageRepository(direct.dynamo, names.FILES_TABLE, log);
    const usage = new UsageRepository(proxied.dynamo, names.FILES_TABLE, log);
    const files = new FileRepository(proxied.dynamo, names.FILES_TABLE, log, usage);
    const reservation = (await usage.reserve(userId, 5000, 1_000_000, Math.floor(Date.now() / 1000) + 600)) as Reservation;
    const lost = loseTransactionAnswers(1);
    try {
      const file = record(userId, 4000);
      expect(await files.createActive(file, reservation)).toBe(true);
      expect(lost.sent()).toBe(2);
      expect(await observer.get(userId, file.fileId)).toMatchObject({ status: 'active', size: 4000 });
      expect(await observed.usage(userId)).toEqual({ usedBytes: 4000, reservedBytes: 0 });
      expect(errors).toEqual([]);
    } finally {
      lost.restore();
    }
  });

  it('R1: a file record transaction that landed but lost the answer of every attempt is undone in the background: no record outlives the failed upload', async () => {
    const userId = randomUUID();
    const observer = new FileRepository(direct.dynamo, names.FILES_TABLE, log);
    const observed = new UsageRepository(direct.dynamo, names.FILES_TABLE, log);
    const usage = new UsageRepository(proxied.dynamo, names.FILES_TABLE, log);
    const files = new FileRepository(proxied.dynamo, names.FILES_TABLE, log, usage);
    const reservation = (await usage.reserve(userId, 5000, 1_000_000, Math.floor(Date.now() / 1000) + 600)) as Reservation;
    const file = record(userId, 4000);
    // AWS_MAX_ATTEMPTS 2: both attempts' answers lost (the second one is the first's repeat under its token).
    const lost = loseTransactionAnswers(2);
    try {
      await expect(files.createActive(file, reservation)).rejects.toThrow('ECONNRESET');
      await usage.release(reservation);
      await files.settled(60_000);
    } finally {
      lost.restore();
    }
    expect(await observer.get(userId, file.fileId)).toBeUndefined();
    expect(await observed.usage(userId)).toEqual({ usedBytes: 0, reservedBytes: 0 });
    expect(errors).toEqual([]);
  });

  it('a file record that exists already is refused and changes nothing: the caller gives the reservation back', async () => {
    const userId = randomUUID();
    const usage = new UsageRepository(direct.dynamo, names.FILES_TABLE, log);
    const files = new FileRepository(direct.dynamo, names.FILES_TABLE, log, usage);
    const file = record(userId, 4000);
    const until = Math.floor(Date.now() / 1000) + 600;
    expect(await files.createActive(file, (await usage.reserve(userId, 5000, 1_000_000, until)) as Reservation)).toBe(true);
    const second = (await usage.reserve(userId, 3000, 1_000_000, until)) as Reservation;
    expect(await files.createActive({ ...file, size: 2000 }, second)).toBe(false);
    expect(await usage.usage(userId)).toEqual({ usedBytes: 4000, reservedBytes: 3000 });
    await usage.release(second);
    expect(await usage.usage(userId)).toEqual({ usedBytes: 4000, reservedBytes: 0 });
  });
});
