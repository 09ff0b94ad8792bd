import { type Account, retryPause, type UploadSpec } from './client';
import type { Harness, Verdict } from './harness';
import type { LedgerEntry } from './ledger';
import type { ScenarioId } from './settings';

/** What a scenario reports: its one line, and every failure in detail. */
export interface ScenarioReport {
  id: ScenarioId | 'warm-up';
  line: string;
  failures: string[];
  /** Why it could not run on this stack (said loudly; not a failure). */
  skipped?: string;
}

export interface Scenario {
  id: ScenarioId;
  title: string;
  run(h: Harness): Promise<ScenarioReport>;
}

/** The failures a verdict adds to a scenario's own (lost, phantom, process and memory problems). */
export function verdictFailures(v: Verdict): string[] {
  return [...v.lost.map((l) => `lost: ${l}`), ...v.phantom.map((p) => `phantom: ${p}`), ...v.problems];
}

/** `, backup checked` / `, backup not checked (no backup-sync yet)` and the same for the mover. */
export function pipelineNote(h: Harness): string {
  const { mover, backup } = h.features;
  if (mover && backup) return '';
  const missing = [!backup ? 'backups' : '', !mover ? 'sensitive moves' : ''].filter(Boolean).join(' and ');
  return `; NOT CHECKED: ${missing} (the stack has no ${[!backup ? 'backup-sync that makes backups' : '', !mover ? 'sensitive mover' : ''].filter(Boolean).join(' and no ')})`;
}

/** Runs `fn` over `items`, at most `limit` at a time; results in the items' order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

/** [0, 1, ..., n-1] */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** A deterministic pseudo-random sequence (mulberry32), so a run's mix can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Resolves once `condition()` holds, checking every `intervalMs`; rejects with `what` after
 * `timeoutMs`. For states of other processes that send no event the suite could await.
 */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Uploads `spec` as a careful client would: on a failure it tries again (after the Retry-After
 * the answer gave, at most `maxPauseMs`) until a 201 or until `giveUp()` says so. Returns every
 * attempt's ledger entry; the last is the 201 unless it gave up.
 */
export async function uploadWithRetries(
  h: Harness,
  scenario: string,
  account: Account,
  spec: UploadSpec,
  giveUp: () => boolean,
  maxPauseMs = 2_000,
): Promise<LedgerEntry[]> {
  const attempts: LedgerEntry[] = [];
  for (let attempt = 1; ; attempt += 1) {
    const entry = await h.api.uploadRecorded(h.ledger, scenario, account, spec, { attempt });
    attempts.push(entry);
    if (entry.status === 201 || giveUp()) return attempts;
    await retryPause(entry.retryAfter, maxPauseMs);
  }
}
