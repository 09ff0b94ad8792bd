import { ChangeMessageVisibilityCommand, DeleteMessageCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from './logger';

export interface QueuePollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Messages handled at once. */
  concurrency: number;
  /** Long-poll wait per receive (0-20 s); stopping waits for the receive under way. */
  pollSeconds: number;
  /** How long a received message stays hidden from other consumers while it is handled. */
  visibilityTimeoutSeconds: number;
  /** Handles one message; when it resolves the message is deleted. */
  handle(message: Message, receiveCount: number): Promise<void>;
  /**
   * Decides what a failed message becomes (retry later, dead-letter...). The message is not
   * deleted unless this does it; when this throws too, the message comes back after its timeout.
   */
  onFailure(message: Message, receiveCount: number, err: unknown): Promise<void>;
  log: Pick<Logger, 'warn' | 'error'>;
}

/**
 * A durable-queue consumer: long-polls SQS with bounded concurrency, deletes each message once it
 * is handled, and leaves failed ones to `onFailure`. A message is only ever deleted after its work
 * is done, so a crash at any point loses nothing (the message reappears after its visibility
 * timeout). `stop` ends receiving, hands back what the last receive brought, and waits for the
 * messages being handled.
 */
export class QueuePoller {
  private readonly inflight = new Set<Promise<void>>();
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: QueuePollerOptions) {}

  get running(): boolean {
    return this.loop !== undefined && !this.stopping;
  }

  start(): void {
    this.loop ??= this.poll();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await Promise.allSettled([...this.inflight]);
  }

  /** Messages being handled now. */
  get busy(): number {
    return this.inflight.size;
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
        // Never aborted: an abandoned long poll could still take messages, hidden for the whole timeout.
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, this.opts.concurrency - this.inflight.size),
            WaitTimeSeconds: this.opts.pollSeconds,
            VisibilityTimeout: this.opts.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        messages = out.Messages ?? [];
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        failures += 1;
        log.warn({ err, queueUrl }, 'receiving from the queue failed; trying again shortly');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** failures)));
        continue;
      }
      if (this.stopping) {
        // Handed back at once: another consumer (or this one, restarted) takes them.
        await this.changeVisibility(messages, 0).catch(() => undefined);
        break;
      }
      for (const message of messages) {
        const run = this.process(message).finally(() => this.inflight.delete(run));
        this.inflight.add(run);
      }
    }
  }

  private async process(message: Message): Promise<void> {
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    try {
      await this.opts.handle(message, receiveCount);
    } catch (err) {
      await this.opts
        .onFailure(message, receiveCount, err)
        .catch((e: unknown) => this.opts.log.error({ err: e, messageId: message.MessageId }, 'handling a failed message failed; it comes back after its timeout'));
      return;
    }
    await this.opts.sqs
      .send(new DeleteMessageCommand({ QueueUrl: this.opts.queueUrl, ReceiptHandle: message.ReceiptHandle }))
      .catch((err: unknown) => this.opts.log.warn({ err, messageId: message.MessageId }, 'could not delete a handled message; it will be handled again'));
  }

  /** Hides a message for `seconds` more (0: visible to the next receive at once). */
  async retryLater(message: Message, seconds: number): Promise<void> {
    await this.changeVisibility([message], Math.min(Math.max(0, Math.round(seconds)), 43_200));
  }

  private async changeVisibility(messages: Message[], seconds: number): Promise<void> {
    await Promise.all(
      messages.map((m) =>
        this.opts.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.opts.queueUrl, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds })),
      ),
    );
  }
}
