import { PurgeQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { createHandler } from '../src/handler';
import { LocalLambdaRunner, type LocalRunnerOptions } from '../src/local-runner';
import { bodyOf, type MoverWorld, moverWorld, silent, storeFile, versionsOf } from './helpers';

let world: MoverWorld;
beforeAll(async () => {
  world = await moverWorld('runner');
});
afterAll(() => world.close());
beforeEach(async () => {
  for (const QueueUrl of [world.queueUrl, world.dlqUrl]) await world.aws.sqs.send(new PurgeQueueCommand({ QueueUrl }));
});

/** Resolves once `check` holds (the runner works in the background), or fails after the deadline. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function runner(handler: LocalRunnerOptions['handler'], overrides: Partial<LocalRunnerOptions> = {}): LocalLambdaRunner {
  return new LocalLambdaRunner({
    sqs: world.aws.sqs,
    queueUrl: world.queueUrl,
    deadLetterQueueUrl: world.dlqUrl,
    handler,
    functionName: 'sensitive-mover',
    maxAttempts: 3,
    retryDelaySeconds: 0,
    concurrency: 2,
    timeoutSeconds: 30,
    pollSeconds: 1,
    log: silent,
    ...overrides,
  });
}

describe('local runner (Lambda asynchronous invocation, locally)', () => {
  it('moves a file from the notification the bucket sends, with a Lambda-shaped event and context', async () => {
    const file = await storeFile(world, { sensitive: true });
    const seen: { requestId: string; remaining: number }[] = [];
    const move = createHandler(world.mover(), silent);
    const r = runner(async (event, context) => {
      seen.push({ requestId: context.awsRequestId, remaining: context.getRemainingTimeInMillis?.() ?? -1 });
      return move(event, context);
    });
    r.start();
    try {
      await until(() => r.stats.succeeded >= 1, 'the event was handled');
    } finally {
      await r.stop();
    }
    expect(seen[0]?.requestId).toEqual(expect.any(String));
    expect(seen[0]?.remaining).toBeGreaterThan(0);
    expect(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).toEqual(file.content);
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
  });

  it('R13: a failing event is retried, then goes to the dead-letter queue with the error; the source stays', async () => {
    const file = await storeFile(world, { sensitive: true });
    let calls = 0;
    const refusing = createHandler(world.mover({ sensitiveBucket: `${world.names.SENSITIVE_BUCKET}-gone` }), silent);
    const r = runner(async (event, context) => {
      calls += 1;
      return refusing(event, context);
    });
    r.start();
    try {
      await until(() => r.stats.deadLettered >= 1, 'the event was dead-lettered');
    } finally {
      await r.stop();
    }
    expect(calls).toBe(3);
    expect(r.stats).toMatchObject({ invocations: 3, retried: 2, deadLettered: 1, succeeded: 0 });
    const dlq = await world.aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: world.dlqUrl, WaitTimeSeconds: 5, MessageAttributeNames: ['All'] }),
    );
    const message = dlq.Messages?.[0];
    expect(message?.MessageAttributes?.ErrorCode?.StringValue).toBe('NoSuchBucket');
    expect(message?.MessageAttributes?.RequestID?.StringValue).toEqual(expect.any(String));
    expect(JSON.stringify(JSON.parse(message?.Body ?? '{}'))).toContain('ObjectCreated');
    expect(await bodyOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).toEqual(file.content);
  });

  it('an event that fails once succeeds on the retry and is not dead-lettered', async () => {
    await storeFile(world, { sensitive: false });
    let calls = 0;
    const r = runner(async () => {
      calls += 1;
      if (calls === 1) throw new Error('transient');
      return { results: [] };
    });
    r.start();
    try {
      await until(() => r.stats.succeeded >= 1, 'the retry succeeded');
    } finally {
      await r.stop();
    }
    expect(r.stats).toMatchObject({ invocations: 2, retried: 1, deadLettered: 0 });
    expect((await world.aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: world.dlqUrl, WaitTimeSeconds: 1 }))).Messages ?? []).toHaveLength(0);
  });

  it('an invocation that outlasts the timeout counts as failed and is retried', async () => {
    await storeFile(world, { sensitive: false });
    let calls = 0;
    const r = runner(
      async () => {
        calls += 1;
        if (calls === 1) await new Promise((resolve) => setTimeout(resolve, 3_000));
        return { results: [] };
      },
      { timeoutSeconds: 1 },
    );
    r.start();
    try {
      await until(() => r.stats.succeeded >= 1 && r.stats.retried >= 1, 'the retry succeeded');
    } finally {
      await r.stop();
    }
    expect(r.stats.retried).toBe(1);
  });
});
