import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ReconcileResult } from './services/reconciler';

/** backup-sync's Prometheus metrics (on the app's own registry, served at /metrics). */
export class BackupMetrics {
  readonly events: Counter<'type' | 'outcome'>;
  readonly copies: Counter<'trigger'>;
  readonly failures: Counter<'stage'>;
  /** Seconds from the object event (S3's time) to the verified backup copy. */
  readonly lag: Histogram;
  private readonly lastReconcile: Gauge<'result'>;
  private readonly lastReconcileAt: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({ name: 'scs_backup_events_total', help: 'Object events handled, by type and outcome', labelNames: ['type', 'outcome'], registers });
    this.copies = new Counter({ name: 'scs_backup_copies_total', help: 'Verified backup copies made, by what triggered them', labelNames: ['trigger'], registers });
    this.failures = new Counter({ name: 'scs_backup_failures_total', help: 'Failed backup work, by stage (event, reconcile, restore)', labelNames: ['stage'], registers });
    this.lag = new Histogram({
      name: 'scs_backup_lag_seconds',
      help: 'Seconds from an object event to its verified backup copy',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.lastReconcile = new Gauge({
      name: 'scs_backup_last_reconcile',
      help: 'Figures of the last reconciliation (scanned, copied, alreadyInSync, failed, pending, retired, expired, durationMs)',
      labelNames: ['result'],
      registers,
    });
    this.lastReconcileAt = new Gauge({ name: 'scs_backup_last_reconcile_timestamp_seconds', help: 'When the last reconciliation finished (Unix time)', registers });
  }

  reconciled(result: ReconcileResult): void {
    for (const name of ['scanned', 'copied', 'alreadyInSync', 'failed', 'pending', 'retired', 'expired', 'durationMs'] as const) {
      this.lastReconcile.set({ result: name }, result[name]);
    }
    this.lastReconcileAt.set(Date.parse(result.finishedAt) / 1000);
    if (result.failed) this.failures.inc({ stage: 'reconcile' }, result.failed);
  }
}
