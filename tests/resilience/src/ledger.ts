import { appendFileSync } from 'node:fs';

/** One upload request as the client saw it. */
export interface LedgerEntry {
  /** Sequence number over the whole run. */
  request: number;
  scenario: string;
  userId: string;
  /** What it stands for in the mix (`5 MiB+1`, `refused .exe`, ...). */
  label: string;
  name: string;
  /** Bytes of the file (sent completely only when the body was). */
  size: number;
  /** SHA-256 (hex) of the bytes; empty when the body was not sent completely. */
  sha256: string;
  sensitive: boolean;
  /** 201, or the refusal expected. */
  expect: number;
  /** HTTP status; 0 when no response arrived. */
  status: number;
  /** The error body's `code`. */
  code?: string;
  /** The id a 201 answered. */
  fileId?: string;
  /** A 201 whose size or sha256 differs from what was sent. */
  mismatch?: string;
  ms: number;
  bytesSent: number;
  /** 1 for a first try, 2+ for a client's retries. */
  attempt: number;
  error?: string;
  retryAfter?: string;
}

/**
 * The client's record of every upload request (written as JSON lines as it goes, so a crashed run
 * still leaves its evidence), checked afterwards against S3, DynamoDB and the backup bucket.
 */
export class Ledger {
  private readonly entries: LedgerEntry[] = [];

  constructor(private readonly file?: string) {}

  record(entry: Omit<LedgerEntry, 'request'>): LedgerEntry {
    const full: LedgerEntry = { request: this.entries.length + 1, ...entry };
    this.entries.push(full);
    if (this.file) appendFileSync(this.file, `${JSON.stringify(full)}\n`);
    return full;
  }

  of(scenario: string): LedgerEntry[] {
    return this.entries.filter((e) => e.scenario === scenario);
  }
}

/** Requests answered 201 (the files that must exist). */
export const stored = (entries: LedgerEntry[]): LedgerEntry[] => entries.filter((e) => e.status === 201);

/** The p-th percentile (0-100) of the values, nearest rank; 0 for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The statuses as `201 x40, 415 x3, client gone x2, no answer x1`. */
export function statusSummary(entries: LedgerEntry[]): string {
  const counts = new Map<string, number>();
  const label = (e: LedgerEntry) => (e.status !== 0 ? String(e.status) : e.expect === 0 ? 'client gone' : 'no answer');
  for (const e of [...entries].sort((a, b) => (a.status || 1000) - (b.status || 1000))) counts.set(label(e), (counts.get(label(e)) ?? 0) + 1);
  return [...counts.entries()].map(([status, n]) => `${status} x${n}`).join(', ');
}
