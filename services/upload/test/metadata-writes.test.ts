import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { UsageRepository } from '@scs/common/files';
import { UploadConfig } from '../src/config';
import { buildUploadApp, closeAuth, newUser, pngBytes, upload, type UploadTestApp } from './helpers';

/**
 * The DynamoDB requests one upload makes, counted as the service's client sends them (each
 * command once, however many attempts the SDK made): what 32 uploads at once wait for. A
 * transaction is written with the items it changes, e.g. `TransactWriteItems(Put reservation,
 * Update usage)`, another command with its table. (An upload that lasts longer than a third of
 * RESERVATION_LEASE_SECONDS adds an `UpdateItem` renewing its reservation per third; these
 * uploads are far shorter.)
 */
function countingAws(): { aws: AwsClients; sent: string[] } {
  const config = loadConfig(UploadConfig, process.env);
  const aws = createAwsClients(config);
  const sent: string[] = [];
  const kind = (key: unknown) => {
    const raw = (key as { fileId?: string | { S?: string } } | undefined)?.fileId;
    const fileId = typeof raw === 'string' ? raw : (raw?.S ?? '');
    return fileId.startsWith('#reservation#') ? 'reservation' : fileId === '#usage' ? 'usage' : 'record';
  };
  aws.dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context.commandName ?? '').replace(/Command$/, '');
      const input = args.input as { TableName?: string; TransactItems?: Record<string, { Key?: unknown; Item?: unknown }>[] };
      const tables: Record<string, string> = { [config.THROTTLE_TABLE]: 'throttle', [config.FILES_TABLE]: 'files', [config.USERS_TABLE]: 'users' };
      const table = tables[input.TableName ?? ''] ?? input.TableName;
      const items = input.TransactItems?.map((item) => Object.entries(item).map(([op, x]) => `${op} ${kind(x.Key ?? x.Item)}`)[0]);
      sent.push(items ? `${name}(${items.join(', ')})` : `${name} ${table}`);
      return next(args);
    },
    { step: 'initialize', name: 'testDynamoCounter' },
  );
  return { aws, sent };
}

describe('DynamoDB requests of a streamed upload', () => {
  let t: UploadTestApp;
  let counted: ReturnType<typeof countingAws>;
  beforeAll(async () => {
    counted = countingAws();
    t = await buildUploadApp({ QUOTA_BYTES: String(1024 * 1024) }, { aws: counted.aws });
  });
  afterAll(async () => {
    await t.app.close();
    counted.aws.destroy();
    await closeAuth();
  });

  // Each test is a new user's first request: the account check reads the users table once, then
  // remembers the answer for ACCOUNT_CHECK_CACHE_SECONDS (the user's next requests skip it).
  it('a stored upload makes three, after the account check of a user\'s first request: the shared rate limit, the reservation with the usage, then the record with the reservation settled and the usage', async () => {
    const user = await newUser();
    counted.sent.length = 0;
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'counted.png', content: pngBytes(300_000) }]);
    expect(res.statusCode).toBe(201);
    expect(counted.sent).toEqual([
      'GetItem users',
      'UpdateItem throttle',
      'TransactWriteItems(Put reservation, Update usage)',
      'TransactWriteItems(Update record, Delete reservation, Update usage)',
    ]);
    // The quota is exact: the file's bytes used, nothing reserved.
    expect(await t.app.inject({ method: 'GET', url: '/api/files/usage', headers: user.headers }).then((r) => r.json().usedBytes)).toBe(300_000);
  });

  it('a refused upload makes three, after the account check: the shared rate limit, the reservation and its release', async () => {
    const user = await newUser();
    counted.sent.length = 0;
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'not-a.png', content: Buffer.from('plain text, not a PNG') }]);
    expect(res.statusCode).toBe(415);
    expect(counted.sent).toEqual(['GetItem users', 'UpdateItem throttle', 'TransactWriteItems(Put reservation, Update usage)', 'TransactWriteItems(Delete reservation, Update usage)']);
  });

  it('uploads at once by one user settle exactly: every byte stored is counted, nothing stays reserved', async () => {
    const user = await newUser();
    const sizes = [200_000, 200_000, 200_000, 200_000, 200_000, 200_000];
    const answers = await Promise.all(sizes.map((size, i) => upload(t.app, user.headers, [{ name: 'file', filename: `race-${i}.png`, content: pngBytes(size) }])));
    const stored = answers.filter((r) => r.statusCode === 201).map((r) => r.json().size as number);
    // 1 MiB of quota for 1.2 MB: the reservations decide who fits; the others are refused (413).
    expect(answers.map((r) => r.statusCode).sort()).toEqual([201, 201, 201, 201, 201, 413]);
    const counters = new UsageRepository(counted.aws.dynamo, t.config.FILES_TABLE, { warn: jest.fn(), error: jest.fn() });
    const usage = await counters.usage(user.userId);
    expect(usage).toEqual({ usedBytes: stored.reduce((a, n) => a + n, 0), reservedBytes: 0 });
  });
});
