import { Algorithm, hash, verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { randomBytes } from 'node:crypto';
import { ServiceBusy } from '@scs/common';
import { WeakPassword } from '../errors';

export const PASSWORD_MIN_CHARS = 12;
export const PASSWORD_MAX_CHARS = 256;

export interface HashCost {
  memoryKiB: number;
  timeCost: number;
}

/** Unicode-normalised password (NFKC), so the same characters typed differently match (AU-02). */
export function normalisePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Length in user-perceived characters (code points), not UTF-16 units. */
export function passwordLength(password: string): number {
  return [...password].length;
}

let commonPasswords: ReadonlySet<string> | undefined;

/** The bundled list of ~49,000 most common passwords (zxcvbn's ranked list), lower-cased (AU-03). */
export function commonPasswordList(): ReadonlySet<string> {
  commonPasswords ??= new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  return commonPasswords;
}

/**
 * Password policy (AU-02/AU-03): 12 to 256 characters, anything allowed, no composition rules,
 * never truncated, not one of the common passwords, not the username. Throws WEAK_PASSWORD.
 */
export function assertAcceptablePassword(password: string, username: string): void {
  const length = passwordLength(password);
  if (length < PASSWORD_MIN_CHARS) {
    throw new WeakPassword(`Passwords need at least ${PASSWORD_MIN_CHARS} characters; a short sentence works well`);
  }
  if (length > PASSWORD_MAX_CHARS) throw new WeakPassword(`Passwords can have at most ${PASSWORD_MAX_CHARS} characters`);
  const lower = password.toLowerCase();
  if (commonPasswordList().has(lower)) {
    throw new WeakPassword('That password is one of the most common ones and easy to guess: choose another');
  }
  if (lower.includes(username)) throw new WeakPassword('The password must not contain the username');
}

/**
 * Bounded concurrency for the expensive hashes, so a login flood queues (or gets a fast 503)
 * instead of exhausting memory; the hashing itself runs on the thread pool, off the event loop.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly limit: number,
    private readonly queueLimit: number,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      if (this.waiting.length >= this.queueLimit) throw new ServiceBusy();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active += 1;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}

/**
 * argon2id hashing (AU-01) with the parameters stored in the hash string, a dummy hash to spend
 * the same time on unknown users (AU-04), and detection of hashes made at an older cost.
 */
export class PasswordHasher {
  private dummy: Promise<string> | undefined;
  private readonly gate: Semaphore;

  constructor(
    readonly cost: HashCost,
    concurrency: number,
    queueLimit: number,
  ) {
    this.gate = new Semaphore(concurrency, queueLimit);
  }

  private options() {
    return { algorithm: Algorithm.Argon2id, memoryCost: this.cost.memoryKiB, timeCost: this.cost.timeCost, parallelism: 1 };
  }

  async hash(password: string): Promise<string> {
    return this.gate.run(() => hash(normalisePassword(password), this.options()));
  }

  /** Verifies against `stored`, or against a dummy hash when there is no account, in the same time. */
  async verify(stored: string | undefined, password: string): Promise<boolean> {
    this.dummy ??= hash(randomBytes(32).toString('base64url'), this.options());
    const target = stored ?? (await this.dummy);
    const ok = await this.gate.run(() => verify(target, normalisePassword(password)).catch(() => false));
    return ok && stored !== undefined;
  }

  /** True when a stored hash used weaker parameters than the current ones (rehash on login). */
  needsRehash(stored: string): boolean {
    const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
    if (!m) return true;
    return Number(m[1]) < this.cost.memoryKiB || Number(m[2]) < this.cost.timeCost;
  }
}
