import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@scs/local-stack/emulator';
import { asEnv, type BackupWorld, backupWorld, headOrNothing, until } from './helpers';

const SERVER = join(__dirname, '..', 'dist', 'server.js');
let world: BackupWorld;
beforeAll(async () => {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: build first (npm test and npm run build do)`);
  world = await backupWorld('durable');
});
afterAll(() => world.close());

/** The real backup-sync server as its own process, on the test's emulator and resources. */
async function startServer(): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [SERVER], {
    env: {
      ...process.env,
      ...asEnv(world.names),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      BACKUP_POLL_SECONDS: '1',
      BACKUP_RETRY_SECONDS: '1',
      // A message taken by a process that dies comes back after this.
      BACKUP_VISIBILITY_SECONDS: '3',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess;
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`backup-sync exited: ${output}`);
    return fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
  }, 'backup-sync answers /health', 60_000);
  return { child, port, output: () => output };
}

describe('R7: a durable queue', () => {
  it('backup-sync killed with events pending misses nothing after a restart', async () => {
    const user = await world.user();
    const first = await startServer();
    const files: { key: string }[] = [];
    for (let i = 0; i < 4; i += 1) files.push(await world.upload(user.headers, { name: `r7-a${i}.txt`, content: Buffer.from(`first batch ${i}`) }));
    // Killed in the middle of its work: no chance to finish or hand anything back.
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    for (let i = 0; i < 4; i += 1) files.push(await world.upload(user.headers, { name: `r7-b${i}.txt`, content: Buffer.from(`second batch ${i}`) }));

    const second = await startServer();
    try {
      const queueUrl = (await world.aws.sqs.send(new GetQueueUrlCommand({ QueueName: world.names.BACKUP_EVENTS_QUEUE }))).QueueUrl;
      await until(async () => {
        for (const f of files) if (!(await headOrNothing(world.aws, world.names.BACKUP_BUCKET, f.key))) return false;
        const q = await world.aws.sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
        );
        return q.Attributes?.ApproximateNumberOfMessages === '0' && q.Attributes?.ApproximateNumberOfMessagesNotVisible === '0';
      }, 'every file is backed up and the queue is drained', 60_000);
      const metrics = await (await fetch(`http://127.0.0.1:${second.port}/metrics`)).text();
      const handled = metrics
        .split('\n')
        .filter((l) => l.startsWith('scs_backup_events_total{') && l.includes('type="Object Created"'))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
      // The restarted process handled the events the first one left (not only a reconciliation).
      expect(handled).toBeGreaterThanOrEqual(4);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((resolve) => second.child.once('exit', resolve));
    }
  }, 120_000);
});
