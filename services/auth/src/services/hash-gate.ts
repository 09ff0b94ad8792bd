/**
 * An in-process bound on the password hashes in flight (queued or running) per account and per
 * client address, checked before a hash is queued: one account or one address cannot fill the
 * hash pool (`HASH_CONCURRENCY`, a few argon2 runs at once per process), so other users' sign-ins
 * keep a place in it during a flood. Per process on purpose: what it protects is this process's
 * CPU and queue; the shared throttles (AU-05) and rate limits bound the totals across instances.
 */
export class HashGate {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly limits: { perAccount: number; perAddress: number }) {}

  /**
   * Admits one hash for `address` and, when given, `account` (a case-folded username). Returns the
   * function that ends it (safe to call twice), or undefined when either key already has its limit
   * in flight (nothing is counted then).
   */
  enter(address: string, account?: string): (() => void) | undefined {
    const keys: [string, number][] = [[`addr#${address}`, this.limits.perAddress]];
    if (account !== undefined) keys.push([`acct#${account}`, this.limits.perAccount]);
    if (keys.some(([key, limit]) => (this.inFlight.get(key) ?? 0) >= limit)) return undefined;
    for (const [key] of keys) this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const [key] of keys) {
        const left = (this.inFlight.get(key) ?? 1) - 1;
        if (left > 0) this.inFlight.set(key, left);
        else this.inFlight.delete(key);
      }
    };
  }

  /** Hashes in flight for a key (`addr#...` or `acct#...`), for tests and metrics. */
  count(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }
}
