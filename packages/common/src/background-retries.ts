import { setTimeout as sleep } from 'node:timers/promises';
import { isDependencyOutage } from './aws';
import type { Logger } from './logger';

/** How long work that failed for a reason a retry may fix is retried in the background, in ms. */
export const BACKGROUND_RETRY_WINDOW_MS = 9 * 60_000;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 15_000;

/**
 * Work that must happen even though a dependency is down right now (R1): giving a quota
 * reservation back, removing what a failed upload left in S3. `run` makes one attempt and awaits
 * it; when that fails with a dependency outage (`isDependencyOutage`), the same work is retried in
 * the background with a doubling, fully jittered delay (250 ms up to 15 s) for up to
 * `BACKGROUND_RETRY_WINDOW_MS`. The work must be safe to repeat (idempotent). Failures are logged
 * with `what` and the context, never thrown: the caller is already failing or its change stands.
 *
 * Written here rather than taken from a backoff package because the waits must neither keep the
 * process alive (unreferenced timers) nor outlive a shutdown (cancelled by `settled`).
 */
export class BackgroundRetries {
  private readonly pending = new Map<Promise<void>, { log: Pick<Logger, 'warn' | 'error'>; what: string; context: object }>();
  private readonly stop = new AbortController();

  /**
   * Runs `work` once; on an outage, again in the background. Resolves after the first attempt.
   * `what` names the work in log lines ("a usage counter update").
   */
  async run(log: Pick<Logger, 'warn' | 'error'>, what: string, context: object, work: () => Promise<unknown>): Promise<void> {
    // Tracked from the first attempt on, so `settled` also waits for a run nobody awaits.
    const first = this.attempt(log, what, context, work).finally(() => this.pending.delete(first));
    this.pending.set(first, { log, what, context });
    await first;
  }

  private async attempt(log: Pick<Logger, 'warn' | 'error'>, what: string, context: object, work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
      return;
    } catch (err) {
      if (!isDependencyOutage(err)) {
        log.error({ err, ...context }, `${what} failed for good`);
        return;
      }
      log.warn({ err, ...context }, `${what} failed; retrying it in the background`);
    }
    const retry = this.retry(log, what, context, work).finally(() => this.pending.delete(retry));
    this.pending.set(retry, { log, what, context });
  }

  /**
   * Waits up to `withinMs` for the work being retried (for a shutdown, and for tests); if some is
   * still pending then, it is given up and logged for an operator, and nothing is retried any more.
   */
  async settled(withinMs: number): Promise<void> {
    const finished = new AbortController();
    let timedOut = false;
    const deadline = sleep(withinMs, undefined, { signal: finished.signal }).then(
      () => void (timedOut = true),
      () => undefined,
    );
    try {
      while (this.pending.size > 0 && !timedOut) await Promise.race([Promise.all([...this.pending.keys()]), deadline]);
    } finally {
      finished.abort();
    }
    if (this.pending.size === 0) return;
    for (const { log, what, context } of this.pending.values()) log.error(context, `${what} was still failing at shutdown; given up`);
    this.stop.abort();
  }

  private async retry(log: Pick<Logger, 'warn' | 'error'>, what: string, context: object, work: () => Promise<unknown>): Promise<void> {
    const giveUpAt = Date.now() + BACKGROUND_RETRY_WINDOW_MS;
    for (let ceiling = FIRST_DELAY_MS; ; ceiling = Math.min(ceiling * 2, MAX_DELAY_MS)) {
      try {
        // Unreferenced: a pending retry alone does not keep the process alive.
        await sleep(Math.random() * ceiling, undefined, { signal: this.stop.signal, ref: false });
      } catch {
        return; // given up at shutdown (logged by `settled`)
      }
      try {
        await work();
        log.warn(context, `${what} went through on a retry`);
        return;
      } catch (err) {
        if (!isDependencyOutage(err) || Date.now() >= giveUpAt) {
          log.error({ err, ...context }, `${what} failed for good`);
          return;
        }
      }
    }
  }
}
