import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { QueuePoller } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { BackupConfig } from '../config';
import type { BackupMetrics } from '../metrics';
import { type Backups, RecordNotReady } from './backups';
import type { Logger } from '@scs/common';

/** The part of S3's EventBridge event backup-sync reads (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html). */
const ObjectEvent = Type.Object({
  source: Type.Literal('aws.s3'),
  'detail-type': Type.String(),
  time: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  detail: Type.Object({
    bucket: Type.Object({ name: Type.String({ minLength: 1 }) }),
    object: Type.Object({ key: Type.String({ minLength: 1 }), 'version-id': Type.Optional(Type.String()) }),
  }),
});
type ObjectEvent = Static<typeof ObjectEvent>;

/** An event's time in ms (ISO 8601 from AWS; the emulator may send Unix seconds). */
function eventTime(e: ObjectEvent): number | undefined {
  if (typeof e.time === 'number') return e.time * 1000;
  const t = e.time ? Date.parse(e.time) : NaN;
  return Number.isFinite(t) ? t : undefined;
}

/**
 * Consumes BACKUP_EVENTS_QUEUE: the EventBridge events (Object Created / Object Deleted) of the
 * primary and sensitive buckets. A created object is backed up; a deleted one retires its backup
 * if the file is gone (a user's delete). A message is deleted only once its work is done; a
 * failure is retried with a growing delay, and the queue dead-letters it after 5 receives (the
 * reconciliation repairs whatever that leaves). Keys in EventBridge events are not URL-encoded.
 */
export class BackupEventConsumer {
  private readonly poller: QueuePoller;
  /** When the last event was handled (ISO 8601), for the status. */
  lastEventAt: string | null = null;

  constructor(
    sqs: SQSClient,
    queueUrl: string,
    private readonly backups: Backups,
    private readonly metrics: BackupMetrics,
    private readonly config: Pick<
      BackupConfig,
      'BACKUP_CONCURRENCY' | 'BACKUP_POLL_SECONDS' | 'BACKUP_RETRY_SECONDS' | 'BACKUP_VISIBILITY_SECONDS' | 'BACKUP_RECORD_WAIT_MS'
    >,
    private readonly log: Logger,
  ) {
    this.poller = new QueuePoller({
      sqs,
      queueUrl,
      concurrency: config.BACKUP_CONCURRENCY,
      pollSeconds: config.BACKUP_POLL_SECONDS,
      visibilityTimeoutSeconds: config.BACKUP_VISIBILITY_SECONDS,
      handle: (message) => this.handle(message),
      onFailure: (message, receives, err) => this.failed(message, receives, err),
      log,
    });
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  get busy(): number {
    return this.poller.busy;
  }

  private async handle(message: Message): Promise<void> {
    let event: unknown;
    try {
      event = JSON.parse(message.Body ?? '');
    } catch {
      event = undefined;
    }
    if (!Value.Check(ObjectEvent, event)) {
      // Not something this service can act on, now or later: dropped with a trace.
      this.metrics.events.inc({ type: 'unknown', outcome: 'ignored' });
      this.log.warn({ messageId: message.MessageId }, 'backup-sync: a message that is not an S3 object event was dropped');
      return;
    }
    const e = event as ObjectEvent;
    const bucket = e.detail.bucket.name;
    const key = e.detail.object.key;
    const type = e['detail-type'];
    let outcome: string;
    if (type === 'Object Created') {
      outcome = await this.backups.backup({ Bucket: bucket, Key: key, VersionId: e.detail.object['version-id'] }, this.config.BACKUP_RECORD_WAIT_MS);
      if (outcome === 'copied') {
        this.metrics.copies.inc({ trigger: 'event' });
        const at = eventTime(e);
        if (at !== undefined) this.metrics.lag.observe(Math.max(0, (Date.now() - at) / 1000));
      }
    } else if (type === 'Object Deleted') {
      outcome = await this.backups.deleted(key);
    } else {
      outcome = 'ignored';
    }
    this.metrics.events.inc({ type, outcome });
    this.lastEventAt = new Date().toISOString();
    this.log.info({ bucket, key, type, outcome }, `backup-sync: ${type}: ${outcome}`);
  }

  private async failed(message: Message, receives: number, err: unknown): Promise<void> {
    const delay = this.config.BACKUP_RETRY_SECONDS * 2 ** (receives - 1);
    this.metrics.failures.inc({ stage: 'event' });
    if (err instanceof RecordNotReady) {
      this.log.info({ messageId: message.MessageId, receives, retryInSeconds: delay }, 'backup-sync: the file is not complete yet; retrying later');
    } else {
      this.log.warn({ err, messageId: message.MessageId, receives, retryInSeconds: delay }, 'backup-sync: an event failed; retrying later');
    }
    await this.poller.retryLater(message, delay);
  }
}
