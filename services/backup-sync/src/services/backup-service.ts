import { paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { every } from '@scs/common';
import { FILE_KEY_PREFIX } from '@scs/common/files';
import type { BackupConfig } from '../config';
import type { BackupMetrics } from '../metrics';
import type { Accounts } from './accounts';
import { type Backups, DeleteInProgress, type RestoredFile } from './backups';
import type { BackupEventConsumer } from './consumer';
import type { Reconciler, ReconcileResult } from './reconciler';
import type { UsageReconciler, UsageReconcileResult } from './usage';
import { AccountNotFound, DeleteInProgress as DeleteInProgressError } from '../errors';
import type { Logger } from '@scs/common';

/** Status answers this close together share one count of the buckets. */
const COUNT_REUSE_MS = 5_000;

export interface BackupStatus {
  primaryObjects: number;
  sensitiveObjects: number;
  backupObjects: number;
  pending: number;
  lastEventAt: string | null;
  lastReconcile: ReconcileResult | null;
}

/**
 * What the admin API and the server drive: the event consumer, reconciliations (periodic and on
 * demand), restores, and the status that sums them up.
 */
export class BackupService {
  private last: ReconcileResult | null = null;
  private counted: { at: number; value: Promise<{ primaryObjects: number; sensitiveObjects: number; backupObjects: number }> } | undefined;
  private stopSchedule: (() => void) | undefined;
  private stopUsageSchedule: (() => void) | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    readonly backups: Backups,
    readonly reconciler: Reconciler,
    readonly consumer: BackupEventConsumer,
    private readonly metrics: BackupMetrics,
    private readonly config: Pick<
      BackupConfig,
      'PRIMARY_BUCKET' | 'SENSITIVE_BUCKET' | 'BACKUP_BUCKET' | 'RECONCILE_INTERVAL_SECONDS' | 'USAGE_RECONCILE_INTERVAL_SECONDS' | 'BACKUP_RECORD_WAIT_MS'
    >,
    private readonly log: Logger,
    private readonly usage: UsageReconciler,
    private readonly accounts: Accounts,
  ) {}

  /**
   * The server's background work: consume events, reconcile now and every RECONCILE_INTERVAL_SECONDS,
   * and reconcile the quota usage every USAGE_RECONCILE_INTERVAL_SECONDS.
   */
  startBackground(): void {
    this.stopUsageSchedule = every(
      this.config.USAGE_RECONCILE_INTERVAL_SECONDS * 1000,
      async () => void (await this.usage.run()),
      this.log,
      'a scheduled usage reconciliation failed',
    );
    this.consumer.start();
    void this.reconcile().catch((err: unknown) => this.log.warn({ err }, 'backup-sync: the start-up reconciliation failed'));
    this.stopSchedule = every(this.config.RECONCILE_INTERVAL_SECONDS * 1000, async () => void (await this.reconcile()), this.log, 'backup-sync: a scheduled reconciliation failed');
  }

  async stopBackground(): Promise<void> {
    this.stopSchedule?.();
    this.stopUsageSchedule?.();
    await this.consumer.stop();
  }

  async reconcile(): Promise<ReconcileResult> {
    const result = await this.reconciler.run();
    this.last = result;
    this.metrics.reconciled(result);
    this.log.info({ ...result }, 'backup-sync: reconciliation finished');
    return result;
  }

  /** Recomputes every user's quota usage (or one user's) from the records (see `UsageReconciler`). */
  async reconcileUsage(userId?: string): Promise<UsageReconcileResult> {
    return this.usage.run(userId ? { userId } : {});
  }

  /**
   * Puts a file back (see `Backups.restore`), only for an account that still exists
   * (AccountNotFound: nothing is recreated); DeleteInProgress while its owner is deleting it.
   */
  async restore(userId: string, fileId: string): Promise<RestoredFile | undefined> {
    if (!(await this.accounts.exists(userId))) throw new AccountNotFound();
    try {
      const restored = await this.backups.restore(userId, fileId, this.config.BACKUP_RECORD_WAIT_MS);
      if (restored?.restoredObject) this.metrics.copies.inc({ trigger: 'restore' });
      return restored;
    } catch (err) {
      if (err instanceof DeleteInProgress) throw new DeleteInProgressError({ cause: err });
      this.metrics.failures.inc({ stage: 'restore' });
      throw err;
    }
  }

  async status(): Promise<BackupStatus> {
    const attributes = await this.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    const pending = Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    const counts = await this.counts();
    return {
      primaryObjects: counts.primaryObjects,
      sensitiveObjects: counts.sensitiveObjects,
      backupObjects: counts.backupObjects,
      pending,
      lastEventAt: this.consumer.lastEventAt,
      lastReconcile: this.last,
    };
  }

  /**
   * Live counts of file objects per bucket, from listings (one request per 1,000 objects per
   * bucket, like a reconciliation); answers within a few seconds of each other share one count.
   */
  private counts(): Promise<{ primaryObjects: number; sensitiveObjects: number; backupObjects: number }> {
    if (this.counted && Date.now() - this.counted.at < COUNT_REUSE_MS) return this.counted.value;
    const value = Promise.all([this.config.PRIMARY_BUCKET, this.config.SENSITIVE_BUCKET, this.config.BACKUP_BUCKET].map((b) => this.count(b))).then(
      ([primaryObjects = 0, sensitiveObjects = 0, backupObjects = 0]) => ({ primaryObjects, sensitiveObjects, backupObjects }),
    );
    this.counted = { at: Date.now(), value };
    value.catch(() => (this.counted = undefined));
    return value;
  }

  private async count(bucket: string): Promise<number> {
    let n = 0;
    for await (const page of paginateListObjectsV2({ client: this.s3, pageSize: 1000 }, { Bucket: bucket, Prefix: FILE_KEY_PREFIX })) n += page.KeyCount ?? 0;
    return n;
  }
}
