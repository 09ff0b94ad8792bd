import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import { FileRepository } from '@scs/common/files';
import { UploadConfig } from '../src/config';
import { buildUploadApp, closeAuth, newUser, pngBytes, upload, type UploadTestApp } from './helpers';

/**
 * The DynamoDB requests one upload makes, counted as the service's client sends them (each
 * command once, however many attempts the SDK made): what 32 uploads at once wait for.
 */
function countingAws(): { aws: AwsClients; sent: string[] } {
  const aws = createAwsClients(loadConfig(UploadConfig, process.env));
  const sent: string[] = [];
  aws.dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(context.commandName ?? '');
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

  it('a stored upload makes two: the reservation, then the record with its usage in one transaction', async () => {
    const user = await newUser();
    counted.sent.length = 0;
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'counted.png', content: pngBytes(300_000) }]);
    expect(res.statusCode).toBe(201);
    expect(counted.sent).toEqual(['TransactWriteItemsCommand', 'TransactWriteItemsCommand']);
    // The quota is exact: the file's bytes used, nothing reserved.
    expect(await t.app.inject({ method: 'GET', url: '/api/files/usage', headers: user.headers }).then((r) => r.json().usedBytes)).toBe(300_000);
  });

  it('a refused upload makes two: the reservation and its release', async () => {
    const user = await newUser();
    counted.sent.length = 0;
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'not-a.png', content: Buffer.from('plain text, not a PNG') }]);
    expect(res.statusCode).toBe(415);
    expect(counted.sent).toEqual(['TransactWriteItemsCommand', 'TransactWriteItemsCommand']);
  });

  it('uploads at once by one user settle exactly: every byte stored is counted, nothing stays reserved', async () => {
    const user = await newUser();
    const sizes = [200_000, 200_000, 200_000, 200_000, 200_000, 200_000];
    const answers = await Promise.all(sizes.map((size, i) => upload(t.app, user.headers, [{ name: 'file', filename: `race-${i}.png`, content: pngBytes(size) }])));
    const stored = answers.filter((r) => r.statusCode === 201).map((r) => r.json().size as number);
    // 1 MiB of quota for 1.2 MB: the reservations decide who fits; the others are refused (413).
    expect(answers.map((r) => r.statusCode).sort()).toEqual([201, 201, 201, 201, 201, 413]);
    const files = new FileRepository(counted.aws.dynamo, t.config.FILES_TABLE, { warn: jest.fn(), error: jest.fn() });
    const usage = await files.usage(user.userId);
    expect(usage).toEqual({ usedBytes: stored.reduce((a, n) => a + n, 0), reservedBytes: 0 });
  });
});
