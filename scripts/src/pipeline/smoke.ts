import { createHash, randomBytes } from 'node:crypto';

/**
 * The deploy smoke test (scripts/pipeline/smoke.sh): what a user does, through the public URL
 * only (the ALB's on AWS, the gateway locally): register a new account, sign in, upload a file,
 * download it (the same SHA-256), delete it and see it gone. Plain `fetch`: no AWS credentials,
 * no SDK. Each step is reported through `log`; the first failure throws a SmokeError.
 */
export interface SmokeOptions {
  /** Base URL, e.g. https://files.example.com or http://127.0.0.1:8080 (no trailing path). */
  baseUrl: string;
  /** Each step's line, e.g. `PASS register (201) [0.2 s]`. */
  log: (line: string) => void;
  /** Per-request timeout in milliseconds (default 30000). */
  requestTimeoutMs?: number;
  /** Size of the uploaded file in bytes (default 256 KiB). */
  fileBytes?: number;
  /** How long to retry the first request while the service comes up, in milliseconds (default 0). */
  waitForReadyMs?: number;
}

export class SmokeError extends Error {}

const json = { 'content-type': 'application/json' };

/** Runs the smoke test; resolves with the uploaded file's id, rejects with SmokeError on the first failing step. */
export async function runSmoke(opts: SmokeOptions): Promise<{ fileId: string; username: string }> {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const timeout = opts.requestTimeoutMs ?? 30_000;
  const call = (path: string, init: RequestInit = {}) => fetch(path.startsWith('http') ? path : `${base}${path}`, { redirect: 'manual', ...init, signal: AbortSignal.timeout(timeout) });

  async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      const value = await fn();
      opts.log(`PASS  ${name} [${((Date.now() - started) / 1000).toFixed(1)} s]`);
      return value;
    } catch (err) {
      opts.log(`FAIL  ${name}: ${(err as Error).message}`);
      throw err instanceof SmokeError ? err : new SmokeError(`${name}: ${(err as Error).message}`);
    }
  }
  const expectStatus = async (res: Response, want: number, what: string) => {
    if (res.status !== want) {
      const body = await res.text().catch(() => '');
      throw new SmokeError(`${what} answered ${res.status}, expected ${want}: ${body.slice(0, 300)}`);
    }
  };

  await step('the service answers (GET /auth/jwks.json)', async () => {
    const deadline = Date.now() + (opts.waitForReadyMs ?? 0);
    for (;;) {
      const res = await call('/auth/jwks.json').catch((err: Error) => err);
      if (!(res instanceof Error) && res.status === 200) {
        const body = (await res.json()) as { keys?: unknown[] };
        if (Array.isArray(body.keys) && body.keys.length > 0) return;
        if (Date.now() >= deadline) throw new SmokeError('no public keys published (is the signing key written? npm run keys:rotate)');
      } else if (Date.now() >= deadline) {
        throw new SmokeError(res instanceof Error ? `${res.message} (${String((res as { cause?: unknown }).cause ?? '')})` : `status ${res.status}`);
      }
      await new Promise((r) => setTimeout(r, 2_000));
    }
  });

  await step('the UI is served with its scripts (/, /app.js, /resumable.js, /sha256-worker.js and the hashing library it imports)', async () => {
    for (const path of ['/', '/app.js', '/resumable.js', '/sha256-worker.js', '/vendor/noble-hashes/sha2.js']) {
      const res = await call(path);
      await expectStatus(res, 200, `GET ${path}`);
      const type = res.headers.get('content-type') ?? '';
      await res.arrayBuffer();
      const want = path === '/' ? 'text/html' : 'javascript';
      if (!type.includes(want)) throw new SmokeError(`GET ${path} is served as ${type || 'nothing'}, not ${want}`);
    }
  });

  const username = `smoke.${Date.now().toString(36)}.${randomBytes(3).toString('hex')}`;
  const password = `smoke ${randomBytes(12).toString('base64url')}`;
  await step(`register ${username}`, async () => {
    await expectStatus(await call('/auth/register', { method: 'POST', headers: json, body: JSON.stringify({ username, password }) }), 201, 'POST /auth/register');
  });
  const authorization = await step('sign in', async () => {
    const res = await call('/auth/login', { method: 'POST', headers: json, body: JSON.stringify({ username, password }) });
    await expectStatus(res, 200, 'POST /auth/login');
    const body = (await res.json()) as { accessToken?: string };
    if (!body.accessToken) throw new SmokeError('no accessToken in the login answer');
    return `Bearer ${body.accessToken}`;
  });

  const size = opts.fileBytes ?? 256 * 1024;
  // Text (an allowed type whose first bytes any sniffing accepts), unique per run.
  const content = Buffer.from(`secure cloud storage smoke test\n${randomBytes(size).toString('base64')}`.slice(0, size));
  const sha256 = createHash('sha256').update(content).digest('hex');
  const fileId = await step(`upload ${content.length} bytes`, async () => {
    const form = new FormData();
    form.append('file', new Blob([content], { type: 'text/plain' }), 'smoke-test.txt');
    const res = await call('/api/files', { method: 'POST', headers: { authorization }, body: form });
    await expectStatus(res, 201, 'POST /api/files');
    const body = (await res.json()) as { id?: string; size?: number; sha256?: string };
    if (!body.id) throw new SmokeError('no id in the upload answer');
    if (body.size !== content.length) throw new SmokeError(`the service recorded ${body.size} bytes, sent ${content.length}`);
    if (body.sha256 && body.sha256 !== sha256) throw new SmokeError(`the service recorded SHA-256 ${body.sha256}, sent ${sha256}`);
    return body.id;
  });

  await step('download: the same SHA-256', async () => {
    const res = await call(`/api/files/${fileId}/download`, { headers: { authorization } });
    await expectStatus(res, 302, `GET /api/files/${fileId}/download`);
    const location = res.headers.get('location');
    if (!location) throw new SmokeError('the download answer has no Location');
    const object = await call(new URL(location, `${base}/`).toString());
    await expectStatus(object, 200, 'GET of the presigned download URL');
    const got = createHash('sha256').update(Buffer.from(await object.arrayBuffer())).digest('hex');
    if (got !== sha256) throw new SmokeError(`downloaded SHA-256 ${got}, uploaded ${sha256}`);
  });

  await step('delete, then the file is gone (404)', async () => {
    await expectStatus(await call(`/api/files/${fileId}`, { method: 'DELETE', headers: { authorization } }), 204, `DELETE /api/files/${fileId}`);
    await expectStatus(await call(`/api/files/${fileId}`, { headers: { authorization } }), 404, `GET /api/files/${fileId} after the delete`);
  });
  return { fileId, username };
}
