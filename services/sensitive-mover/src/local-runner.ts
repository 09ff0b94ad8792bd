import { DeleteMessageCommand, type Message, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { QueuePoller } from '@scs/common';
import type { InvocationContext } from './handler';
import type { Logger } from '@scs/common/logger';

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
  /** Long-poll wait per receive, at most 20 s; stopping waits for the receive under way. */
  pollSeconds: number;
  log: Logger;
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
  private readonly poller: QueuePoller;

  constructor(private readonly opts: LocalRunnerOptions) {
    this.poller = new QueuePoller({
      sqs: opts.sqs,
      queueUrl: opts.queueUrl,
      concurrency: opts.concurrency,
      pollSeconds: opts.pollSeconds,
      visibilityTimeoutSeconds: opts.timeoutSeconds,
      handle: (message) => this.invoke(message),
      onFailure: (message, attempt, err) => this.failed(message, attempt, err),
      log: opts.log,
    });
  }

  /** Starts polling; `stop` ends it. */
  start(): void {
    this.poller.start();
  }

  /** Stops receiving, lets running invocations finish, and resolves once they have. */
  async stop(): Promise<void> {
    await this.poller.stop();
  }

  private async invoke(message: Message): Promise<void> {
    const { timeoutSeconds } = this.opts;
    const deadline = Date.now() + timeoutSeconds * 1000;
    const context: InvocationContext = {
      awsRequestId: message.MessageId ?? 'unknown',
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
    } finally {
      clearTimeout(timer);
    }
    this.stats.succeeded += 1;
  }

  private async failed(message: Message, attempt: number, err: unknown): Promise<void> {
    const { sqs, log } = this.opts;
    const requestId = message.MessageId ?? 'unknown';
    const e = err instanceof Error ? err : new Error(String(err));
    if (attempt < this.opts.maxAttempts) {
      const delay = this.opts.retryDelaySeconds * 2 ** (attempt - 1);
      this.stats.retried += 1;
      log.warn({ requestId, attempt, retryInSeconds: delay, error: e.message }, 'invocation failed; it will be retried');
      await this.poller.retryLater(message, delay);
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
    await sqs.send(new DeleteMessageCommand({ QueueUrl: this.opts.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    this.stats.deadLettered += 1;
    log.error({ requestId, attempts: attempt, error: e.message }, 'invocation failed on its last attempt; the event went to the dead-letter queue');
  }
}
