import { paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { FILE_KEY_PREFIX } from '@scs/common/files';
import pLimit from 'p-limit';
import type { BackupConfig } from '../config';
import { type Backups, RecordNotReady } from './backups';
import type { Logger } from '@scs/common';

/** What one reconciliation found and did (the admin API's answer, plus the details the status shows). */
export interface ReconcileResult {
  /** File objects listed in the primary and sensitive buckets. */
  scanned: number;
  /** Missing or stale backups copied. */
  copied: number;
  alreadyInSync: number;
  /** Copies (or retirements) that failed; the next reconciliation tries again. */
  failed: number;
  durationMs: number;
  /** Files whose record the upload service has not finished yet (backed up by their event or the next run). */
  pending: number;
  /** Backups of deleted files moved under deleted/ (their delete event was missed). */
  retired: number;
  /** Backups of deleted files removed after the retention period. */
  expired: number;
  primaryObjects: number;
  sensitiveObjects: number;
  backupObjects: number;
  finishedAt: string;
}

interface Listed {
  bucket: string;
  size: number;
  modified: number;
}

/**
 * Compares the sources (primary and sensitive buckets) with the backup bucket by key, size and
 * age, from paginated listings only (one request per 1,000 objects per bucket), and repairs the
 * differences: a missing backup, or one older than its source or of another size, is copied
 * again (verified by checksum as every copy); a backup whose file is gone is retired; retired
 * backups past BACKUP_RETENTION_DAYS are removed. Copies already in sync cost nothing beyond the
 * listing. Bounded concurrency; S3 throttling is retried with backoff by the SDK.
 */
export class Reconciler {
  private running: Promise<ReconcileResult> | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly backups: Backups,
    private readonly config: Pick<BackupConfig, 'PRIMARY_BUCKET' | 'SENSITIVE_BUCKET' | 'BACKUP_BUCKET' | 'BACKUP_CONCURRENCY'>,
    private readonly log: Pick<Logger, 'warn'>,
    private readonly onCopied: () => void = () => {},
  ) {}

  /** Runs a reconciliation, or joins the one under way. */
  run(): Promise<ReconcileResult> {
    this.running ??= this.reconcile().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async list(bucket: string): Promise<Map<string, Listed>> {
    const found = new Map<string, Listed>();
    for await (const page of paginateListObjectsV2({ client: this.s3, pageSize: 1000 }, { Bucket: bucket, Prefix: FILE_KEY_PREFIX })) {
      for (const o of page.Contents ?? []) {
        if (o.Key) found.set(o.Key, { bucket, size: o.Size ?? 0, modified: o.LastModified?.getTime() ?? 0 });
      }
    }
    return found;
  }

  private async reconcile(): Promise<ReconcileResult> {
    const started = Date.now();
    const [primary, sensitive, backup] = await Promise.all([
      this.list(this.config.PRIMARY_BUCKET),
      this.list(this.config.SENSITIVE_BUCKET),
      this.list(this.config.BACKUP_BUCKET),
    ]);
    // A file caught in the middle of its move is in both: the newer object is the one to keep.
    const sources = new Map(primary);
    for (const [key, s] of sensitive) {
      const p = sources.get(key);
      if (!p || s.modified >= p.modified) sources.set(key, s);
    }

    const result = { scanned: sources.size, copied: 0, alreadyInSync: 0, failed: 0, pending: 0, retired: 0, expired: 0 };
    let added = 0;
    const limit = pLimit(this.config.BACKUP_CONCURRENCY);
    const tasks: Promise<void>[] = [];
    const attempt = (key: string, work: () => Promise<void>) =>
      tasks.push(
        limit(async () => {
          try {
            await work();
          } catch (err) {
            if (err instanceof RecordNotReady) {
              result.pending += 1;
              return;
            }
            result.failed += 1;
            this.log.warn({ err, key }, 'reconcile: repairing a backup failed; the next run tries again');
          }
        }),
      );

    for (const [key, source] of sources) {
      const copy = backup.get(key);
      if (copy && copy.size === source.size && copy.modified >= source.modified) {
        result.alreadyInSync += 1;
        continue;
      }
      attempt(key, async () => {
        if ((await this.backups.backup({ Bucket: source.bucket, Key: key })) === 'copied') {
          result.copied += 1;
          if (!copy) added += 1;
          this.onCopied();
        }
      });
    }
    for (const key of backup.keys()) {
      if (sources.has(key)) continue;
      attempt(key, async () => {
        const outcome = await this.backups.deleted(key);
        if (outcome === 'retired') result.retired += 1;
        // 'kept': the record exists but no object does. Not repaired here: restore is an admin's decision.
        if (outcome === 'kept') this.log.warn({ key }, 'reconcile: a backup whose file has a record but no object (restore it?)');
      });
    }
    tasks.push(
      limit(async () => {
        result.expired = await this.backups.expire();
      }),
    );
    await Promise.all(tasks);
    return {
      ...result,
      durationMs: Date.now() - started,
      primaryObjects: primary.size,
      sensitiveObjects: sensitive.size,
      backupObjects: backup.size + added - result.retired,
      finishedAt: new Date().toISOString(),
    };
  }
}
