import { setTimeout as sleep } from 'node:timers/promises';
import { describeExit, type ManagedChild } from './child';

/**
 * Resolves once `GET url` answers 2xx. Rejects when the child exits first, when the deadline
 * passes, or when `signal` is aborted (the stack is stopping).
 */
export async function waitForHealthy(url: string, child: ManagedChild, opts: { timeoutMs: number; signal: AbortSignal }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError = 'no answer yet';
  for (;;) {
    opts.signal.throwIfAborted();
    const exit = child.exitInfo;
    if (exit) throw new Error(`${child.name} exited during start-up (${describeExit(exit)})`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return;
      lastError = `HTTP ${res.status}`;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${child.name} did not answer ${url} within ${opts.timeoutMs} ms (${lastError})`);
    await sleep(200, undefined, { signal: opts.signal }).catch(() => undefined);
  }
}
