import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { InvocationContext } from './handler';

export interface RunnerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LocalRunnerOptions {
  sqs: SQSClient;
  /** The queue the bucket's notifications go to. */
  queueUrl: string;
  /** Where an event goes after its last failed attempt (Lambda: the DLQ / on-failure destination). */
  deadLetterQueueUrl: string;
  handler: (event: unknown, context: InvocationContext) => Promise<unknown>;
  functionName: string;
  /** Attempts per event, the first included (Lambda's asynchronous invocation: 3). */
  maxAttempts: number;
  /** Delay before the first retry in seconds, doubled for each further one (Lambda: about 60, then 120). */
  retryDelaySeconds: number;
  /** Invocations at once. */
  concurrency: number;
  /** An invocation that takes longer has failed (Lambda's function timeout); its event stays hidden meanwhile. */
  timeoutSeconds: number;
  /** Long-poll wait per receive, at most 20 s. */
  pollSeconds: number;
  log: RunnerLogger;
}

/** Counts since start, for logs and tests. */
export interface RunnerStats {
  invocations: number;
  succeeded: number;
  retried: number;
  deadLettered: number;
}

class InvocationTimeout extends Error {
  constructor(seconds: number) {
    super(`the invocation did not finish within ${seconds} s`);
    this.name = 'InvocationTimeout';
  }
}

/**
 * Stands in for Lambda's asynchronous invocation locally: long-polls the queue the bucket's
 * notifications feed, invokes the handler in-process with the event and a Lambda-shaped context,
 * and on failure retries the same event after a growing delay (the message is hidden meanwhile, so
 * a crash of this process loses nothing either); after the last attempt the event goes to the
 * dead-letter queue with the error, as Lambda's DLQ receives it (message attributes RequestID,
 * ErrorCode, ErrorMessage).
 */
export class LocalLambdaRunner {
  readonly stats: RunnerStats = { invocations: 0, succeeded: 0, retried: 0, deadLettered: 0 };
  private readonly inflight = new Set<Promise<void>>();
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: LocalRunnerOptions) {}

  /** Starts polling; `stop` ends it. */
  start(): void {
    this.loop ??= this.poll();
  }

  /**
   * Stops receiving (after the receive under way, at most `pollSeconds`: an abandoned long poll
   * could still take messages, which would then stay hidden for the whole timeout), hands back
   * what that receive brought, lets running invocations finish, and resolves once they have.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await Promise.allSettled([...this.inflight]);
  }

  private async poll(): Promise<void> {
    const { sqs, queueUrl, log } = this.opts;
    let failures = 0;
    while (!this.stopping) {
      if (this.inflight.size >= this.opts.concurrency) {
        await Promise.race(this.inflight);
        continue;
      }
      let messages: Message[];
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, this.opts.concurrency - this.inflight.size),
            WaitTimeSeconds: this.opts.pollSeconds,
            VisibilityTimeout: this.opts.timeoutSeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        messages = out.Messages ?? [];
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        failures += 1;
        log.warn({ err }, 'receiving events failed; trying again shortly');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** failures)));
        continue;
      }
      if (this.stopping) {
        await this.handBack(messages);
        break;
      }
      for (const message of messages) {
        const run = this.invoke(message).finally(() => this.inflight.delete(run));
        this.inflight.add(run);
      }
    }
  }

  /** Makes received messages visible again at once (this runner is stopping; another takes them). */
  private async handBack(messages: Message[]): Promise<void> {
    await Promise.allSettled(
      messages.map((m) =>
        this.opts.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.opts.queueUrl, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 })),
      ),
    );
  }

  private async invoke(message: Message): Promise<void> {
    const { sqs, queueUrl, log, timeoutSeconds } = this.opts;
    const attempt = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    const requestId = message.MessageId ?? 'unknown';
    const deadline = Date.now() + timeoutSeconds * 1000;
    const context: InvocationContext = {
      awsRequestId: requestId,
      functionName: this.opts.functionName,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    this.stats.invocations += 1;
    let timer: NodeJS.Timeout | undefined;
    try {
      const event: unknown = JSON.parse(message.Body ?? '');
      await Promise.race([
        this.opts.handler(event, context),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new InvocationTimeout(timeoutSeconds)), timeoutSeconds * 1000);
        }),
      ]);
      clearTimeout(timer);
      this.stats.succeeded += 1;
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    } catch (err) {
      clearTimeout(timer);
      await this.failed(message, attempt, requestId, err).catch((e: unknown) =>
        // The message stays hidden until the visibility timeout ends, then comes back: nothing is lost.
        log.error({ err: e, requestId }, 'could not record a failed invocation; the event comes back after the timeout'),
      );
    }
  }

  private async failed(message: Message, attempt: number, requestId: string, err: unknown): Promise<void> {
    const { sqs, queueUrl, log } = this.opts;
    const e = err instanceof Error ? err : new Error(String(err));
    if (attempt < this.opts.maxAttempts) {
      const delay = this.opts.retryDelaySeconds * 2 ** (attempt - 1);
      this.stats.retried += 1;
      log.warn({ requestId, attempt, retryInSeconds: delay, error: e.message }, 'invocation failed; it will be retried');
      await sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: Math.min(delay, 43_200) }),
      );
      return;
    }
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: this.opts.deadLetterQueueUrl,
        MessageBody: message.Body ?? '',
        MessageAttributes: {
          RequestID: { DataType: 'String', StringValue: requestId },
          ErrorCode: { DataType: 'String', StringValue: e.name || 'Error' },
          ErrorMessage: { DataType: 'String', StringValue: e.message.slice(0, 1024) || '(no message)' },
        },
      }),
    );
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    this.stats.deadLettered += 1;
    log.error({ requestId, attempts: attempt, error: e.message }, 'invocation failed on its last attempt; the event went to the dead-letter queue');
  }
}
