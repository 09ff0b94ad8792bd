import type { UsageReconciliation, UsageRepository } from '@scs/common/files';
import type { Logger } from '@scs/common';

export interface UsageReconcileResult {
  /** Users whose usage was checked. */
  users: number;
  /** Users whose counters differed from their records and were rewritten. */
  corrected: number;
  /** Reservations of uploads that no longer exist (their process died), released. */
  releasedReservations: number;
  releasedBytes: number;
  /** Users whose check failed (logged); the next run tries again. */
  failed: number;
  durationMs: number;
}

/**
 * The usage reconciliation (quotas that heal): for every user with a usage item, or one user,
 * `UsageRepository.reconcile`: reservations whose upload stopped renewing them (a process
 * killed mid-upload) are released, and used / reserved are recomputed from the records, rewritten
 * only if nothing changed meanwhile, so it runs safely while uploads go on. One run at a time per
 * process: a request during a run joins it.
 */
export class UsageReconciler {
  private running: Promise<UsageReconcileResult> | undefined;

  constructor(
    private readonly usage: UsageRepository,
    private readonly log: Pick<Logger, 'info' | 'warn'>,
    private readonly now: () => number = Date.now,
  ) {}

  async run(opts: { userId?: string } = {}): Promise<UsageReconcileResult> {
    if (opts.userId) return this.reconcile([opts.userId]);
    this.running ??= this.reconcile(this.usage.usersWithUsage()).finally(() => (this.running = undefined));
    return this.running;
  }

  private async reconcile(users: Iterable<string> | AsyncIterable<string>): Promise<UsageReconcileResult> {
    const started = this.now();
    const result = { users: 0, corrected: 0, releasedReservations: 0, releasedBytes: 0, failed: 0, durationMs: 0 };
    for await (const userId of users) {
      result.users += 1;
      let one: UsageReconciliation;
      try {
        one = await this.usage.reconcile(userId, Math.floor(this.now() / 1000));
      } catch (err) {
        result.failed += 1;
        this.log.warn({ err, userId }, 'usage reconciliation: a user could not be checked');
        continue;
      }
      if (one.corrected) result.corrected += 1;
      result.releasedReservations += one.releasedReservations;
      result.releasedBytes += one.releasedBytes;
    }
    result.durationMs = this.now() - started;
    this.log.info(result, 'usage reconciliation finished');
    return result;
  }
}
