import { setTimeout as sleep } from 'node:timers/promises';
import { isDependencyOutage } from './aws';
import type { Logger } from './logger';

/** How long work that failed for a reason a retry may fix is retried in the background, in ms. */
export const BACKGROUND_RETRY_WINDOW_MS = 9 * 60_000;
/** The first retry waits 125-250 ms; each later wait doubles, up to 15 s (p-retry's randomised exponential backoff). */
const FIRST_DELAY_MS = 125;
const MAX_DELAY_MS = 15_000;

/**
 * Work that must happen even though a dependency is down right now (R1): giving a quota
 * reservation back, removing what a failed upload left in S3. `run` makes one attempt and awaits
 * it; when that fails with a dependency outage (`isDependencyOutage`), the same work is retried in
 * the background by p-retry, with a doubling, randomised delay (125-250 ms at first, at most 15 s),
 * for up to `BACKGROUND_RETRY_WINDOW_MS`. The work must be safe to repeat (idempotent). Failures
 * are logged with `what` and the context, never thrown: the caller is already failing or its
 * change stands. The waits neither keep the process alive (`unref`) nor outlive a shutdown
 * (`settled` aborts them).
 */
export class BackgroundRetries {
  private readonly pending = new Map<Promise<void>, { log: Pick<Logger, 'warn' | 'error'>; what: string; context: object }>();
  private readonly stop = new AbortController();

  /**
   * Runs `work` once; on an outage, again in the background. Resolves after the first attempt
   * (and its log line). `what` names the work in log lines ("a usage counter update").
   */
  async run(log: Pick<Logger, 'warn' | 'error'>, what: string, context: object, work: () => Promise<unknown>): Promise<void> {
    let firstAttemptDone!: () => void;
    const firstAttempt = new Promise<void>((resolve) => (firstAttemptDone = resolve));
    const attempt = async (attemptNumber: number) => {
      try {
        return await work();
      } catch (err) {
        if (attemptNumber === 1) {
          if (isDependencyOutage(err)) log.warn({ err, ...context }, `${what} failed; retrying it in the background`);
          else log.error({ err, ...context }, `${what} failed for good`);
        }
        throw err;
      } finally {
        if (attemptNumber === 1) firstAttemptDone();
      }
    };
    let attempts = 0;
    // Tracked from the first attempt on, so `settled` also waits for a run nobody awaits.
    // p-retry ships only as an ES module: imported on first use (this package compiles to CommonJS).
    const retrying = import('p-retry').then(({ default: pRetry }) => pRetry(() => attempt((attempts += 1)), {
      retries: Number.POSITIVE_INFINITY,
      maxRetryTime: BACKGROUND_RETRY_WINDOW_MS,
      minTimeout: FIRST_DELAY_MS,
      maxTimeout: MAX_DELAY_MS,
      factor: 2,
      randomize: true,
      unref: true,
      signal: this.stop.signal,
      shouldRetry: ({ error }) => isDependencyOutage(error),
    }));
    const job: Promise<void> = retrying
      .then(
        () => {
          if (attempts > 1) log.warn(context, `${what} went through on a retry`);
        },
        (err: unknown) => {
          // The first failure was logged by its attempt; a shutdown's give-up is logged by `settled`.
          if (attempts > 1 && !this.stop.signal.aborted) log.error({ err, ...context }, `${what} failed for good`);
        },
      )
      .finally(() => this.pending.delete(job));
    this.pending.set(job, { log, what, context });
    await firstAttempt;
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
}
