import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { GeneratedFile, multipartFile, PNG_SIGNATURE, postStream, type StreamedResponse } from '@scs/testing/payload';
import type { Ledger, LedgerEntry } from './ledger';

/** A user of the suite, signed in. */
export interface Account {
  username: string;
  password: string;
  userId: string;
  token: string;
  /** When the token was issued (performance.now() ms): tokens live 15 minutes. */
  tokenAt: number;
}

/** One file a client sends, and what the product must answer. */
export interface UploadSpec {
  /** What it stands for in the mix (`5 MiB+1`, `refused .exe`, ...). */
  label: string;
  name: string;
  size: number;
  content: 'binary' | 'text';
  /** The first bytes (a PNG signature, or nothing). */
  head: Buffer;
  sensitive: boolean;
  /** 201, the refusal expected (413, 415, ...), or 0: the client goes away (`disconnectAfterBytes`) before any answer. */
  expect: number;
  /** The client disconnects after sending this many body bytes. */
  disconnectAfterBytes?: number;
  /** Send without Content-Length. */
  chunked?: boolean;
  /** Pace the body (a slow client), in bytes per second. */
  bytesPerSecond?: number;
}

export interface JsonResponse<T = Record<string, unknown>> {
  status: number;
  json: T;
  headers: Headers;
}

/** How long a request may go without a byte moving before the client gives up (a hang is a failure). */
export const REQUEST_IDLE_TIMEOUT_MS = 120_000;
const TOKEN_REFRESH_AFTER_MS = 10 * 60_000;
const PART_TYPES: Record<string, string> = { png: 'image/png', txt: 'text/plain', exe: 'application/octet-stream' };

let nextSeed = 1;

/** A file name from a label: `medium+1` -> `medium-plus-1`. */
const fileName = (label: string, ext: string) => `${label.replace(/\+/g, ' plus ').replace(/-/g, ' minus ').trim().replace(/[^a-z0-9]+/gi, '-')}.${ext}`;

/** Common specs: an accepted PNG or text file of some size. */
export const png = (label: string, size: number, sensitive = false): UploadSpec => ({
  label,
  name: fileName(label, 'png'),
  size,
  content: 'binary',
  head: PNG_SIGNATURE,
  sensitive,
  expect: 201,
});
export const txt = (label: string, size: number, sensitive = false): UploadSpec => ({
  label,
  name: fileName(label, 'txt'),
  size,
  content: 'text',
  head: Buffer.alloc(0),
  sensitive,
  expect: 201,
});

/**
 * The suite's HTTP client: everything goes through the gateway, as a browser's requests would.
 * JSON calls use fetch; uploads are streamed with node:http, their bytes generated on the fly
 * (never held whole) and hashed on the way.
 */
export class ApiClient {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 512 });

  constructor(readonly base: string) {}

  async json<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts: { token?: string; body?: unknown; timeoutMs?: number } = {},
  ): Promise<JsonResponse<T>> {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    });
    const text = await res.text();
    let json: unknown = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { raw: text.slice(0, 500) };
    }
    return { status: res.status, json: json as T, headers: res.headers };
  }

  /** Registers and signs in a new user (retrying the register throttle's 429 as told by Retry-After). */
  async signUp(prefix: string): Promise<Account> {
    const username = `${prefix}-${randomBytes(4).toString('hex')}`.toLowerCase();
    const password = `Resilience ${randomBytes(9).toString('base64url')} pass`;
    for (let attempt = 1; ; attempt += 1) {
      const res = await this.json<{ id?: string }>('POST', '/auth/register', { body: { username, password } });
      if (res.status === 201 && res.json.id) break;
      if ((res.status === 429 || res.status === 503) && attempt < 10) {
        await retryPause(res.headers.get('retry-after'));
        continue;
      }
      throw new Error(`register answered ${res.status}: ${JSON.stringify(res.json)}`);
    }
    return this.login({ username, password, userId: '', token: '', tokenAt: 0 });
  }

  async login(account: Account): Promise<Account> {
    for (let attempt = 1; ; attempt += 1) {
      const res = await this.json<{ accessToken?: string; user?: { id?: string } }>('POST', '/auth/login', {
        body: { username: account.username, password: account.password },
      });
      if (res.status === 200 && res.json.accessToken && res.json.user?.id) {
        return Object.assign(account, { token: res.json.accessToken, userId: res.json.user.id, tokenAt: performance.now() });
      }
      if ((res.status === 429 || res.status === 503) && attempt < 10) {
        await retryPause(res.headers.get('retry-after'));
        continue;
      }
      throw new Error(`login of ${account.username} answered ${res.status}: ${JSON.stringify(res.json)}`);
    }
  }

  /** The account with a token that has a while to live. */
  async fresh(account: Account): Promise<Account> {
    return performance.now() - account.tokenAt > TOKEN_REFRESH_AFTER_MS ? this.login(account) : account;
  }

  /** POST /api/files with a generated file; the response as it came (status 0: no response). */
  async upload(
    account: Account,
    spec: UploadSpec,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ res: StreamedResponse; file: GeneratedFile }> {
    const seed = nextSeed++;
    const file = new GeneratedFile(spec.size, seed, spec.head, 256 * 1024, spec.content);
    const ext = spec.name.slice(spec.name.lastIndexOf('.') + 1);
    const body = multipartFile('file', spec.name, PART_TYPES[ext] ?? 'application/octet-stream', file);
    const query = spec.sensitive ? '?sensitive=true' : '';
    const res = await postStream(`${this.base}/api/files${query}`, {
      headers: { authorization: `Bearer ${(await this.fresh(account)).token}` },
      body,
      agent: this.agent,
      timeoutMs: REQUEST_IDLE_TIMEOUT_MS,
      ...(spec.chunked ? { chunked: true } : {}),
      ...(spec.bytesPerSecond ? { bytesPerSecond: spec.bytesPerSecond } : {}),
      ...(spec.disconnectAfterBytes !== undefined ? { disconnectAfterBytes: spec.disconnectAfterBytes } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { res, file };
  }

  /** Uploads and writes the outcome into the ledger. */
  async uploadRecorded(
    ledger: Ledger,
    scenario: string,
    account: Account,
    spec: UploadSpec,
    opts: { signal?: AbortSignal; attempt?: number } = {},
  ): Promise<LedgerEntry> {
    const { res, file } = await this.upload(account, spec, opts);
    let sha256 = '';
    try {
      sha256 = file.sha256();
    } catch {
      // the body was not sent completely: no digest
    }
    let parsed: { id?: string; size?: number; sha256?: string; code?: string } = {};
    try {
      parsed = res.body ? (JSON.parse(res.body) as typeof parsed) : {};
    } catch {
      // not JSON (a proxy's page): the status says enough
    }
    return ledger.record({
      scenario,
      userId: account.userId,
      label: spec.label,
      name: spec.name,
      size: spec.size,
      sha256,
      sensitive: spec.sensitive,
      expect: spec.expect,
      status: res.status,
      ...(parsed.code ? { code: parsed.code } : {}),
      ...(res.status === 201 && parsed.id ? { fileId: parsed.id } : {}),
      ...(res.status === 201 && (parsed.size !== spec.size || parsed.sha256 !== sha256)
        ? { mismatch: `answered size ${parsed.size} sha256 ${parsed.sha256}` }
        : {}),
      ms: Math.round(res.ms),
      bytesSent: res.bytesSent,
      attempt: opts.attempt ?? 1,
      ...(res.error ? { error: res.error } : {}),
      ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}),
    });
  }

  /** GET /api/files/usage: the bytes counted against the user's quota. */
  async usedBytes(account: Account): Promise<number> {
    const res = await this.json<{ usedBytes?: number }>('GET', '/api/files/usage', { token: (await this.fresh(account)).token });
    if (res.status !== 200 || typeof res.json.usedBytes !== 'number') throw new Error(`usage answered ${res.status}: ${JSON.stringify(res.json)}`);
    return res.json.usedBytes;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Waits as long as a Retry-After header says (capped at 5 s: the suite retries promptly). */
export function retryPause(retryAfter: string | null | undefined, capMs = 5_000): Promise<void> {
  const seconds = Number(retryAfter);
  const ms = Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, capMs) : 1_000;
  return new Promise((resolve) => setTimeout(resolve, ms));
}
