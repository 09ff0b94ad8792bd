import { backOff } from 'exponential-backoff';
import { isDependencyOutage } from './aws';

interface Logger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** How long work that failed for a reason a retry may fix is retried in the background, in ms. */
export const BACKGROUND_RETRY_WINDOW_MS = 9 * 60_000;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 15_000;

/**
 * Work that must happen even though a dependency is down right now (R1): giving a quota
 * reservation back, removing what a failed upload left in S3. `run` makes one attempt and awaits
 * it; when that fails with a dependency outage (`isDependencyOutage`), the same work is retried in
 * the background with a doubling delay (250 ms up to 15 s, full jitter) for up to
 * `BACKGROUND_RETRY_WINDOW_MS`. The work must be safe to repeat (idempotent). Failures are logged
 * with `what` and the context, never thrown: the caller is already failing or its change stands.
 */
export class BackgroundRetries {
  private readonly pending = new Set<Promise<void>>();

  /**
   * Runs `work` once; on an outage, again in the background. Resolves after the first attempt.
   * `what` names the work in log lines ("a usage counter update").
   */
  async run(log: Logger, what: string, context: object, work: () => Promise<unknown>): Promise<void> {
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
    const giveUpAt = Date.now() + BACKGROUND_RETRY_WINDOW_MS;
    const retry = backOff(work, {
      delayFirstAttempt: true,
      startingDelay: FIRST_DELAY_MS,
      maxDelay: MAX_DELAY_MS,
      jitter: 'full',
      numOfAttempts: Number.MAX_SAFE_INTEGER,
      retry: (err: unknown) => isDependencyOutage(err) && Date.now() < giveUpAt,
    })
      .then(
        () => log.warn(context, `${what} went through on a retry`),
        (err: unknown) => log.error({ err, ...context }, `${what} failed for good`),
      )
      .finally(() => this.pending.delete(retry));
    this.pending.add(retry);
  }

  /** Resolves once no work is being retried (each within the window): for shutdown and tests. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
