import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '@scs/common';
import { ResourceNames } from '@scs/local-stack/provision';
import { LOCAL_AWS } from '@scs/local-stack/stack/run';
import { type Browser, chromium, type Page, type Request, type Response, type Route } from 'playwright-core';
import { freeStackPorts, type RunningStack, startStack, stopStack } from '@scs/testing/stack';

/**
 * END TO END in a real browser: headless Chromium (Debian's, driven by playwright-core) against
 * `npm start`: register, sign in, upload with progress, see the file listed, download the same
 * bytes, a refused file shows its error in words, silent refresh survives a reload, delete, sign out.
 */
const REPO_ROOT = resolve(__dirname, '../../..');
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

function chromiumPath(): string {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) return configured;
  const found = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).stdout.trim();
  if (!found) {
    throw new Error('Chromium is required for the browser tests: apt-get install chromium (or set CHROMIUM_PATH)');
  }
  return found;
}

const DIRECT_ABOVE = 8 * 1024 * 1024;
/**
 * The stack copies objects above 128 MiB in parts (COPY_IN_PARTS_ABOVE_BYTES, 5 GiB on AWS), so a
 * 200 MiB resumable upload takes the path of a file too large for S3 to hash: the SHA-256 the page
 * computed is what the service records. The smaller ones take the other path: S3 computes it and the
 * service compares it with the page's.
 */
const COPY_IN_PARTS_ABOVE = 128 * 1024 * 1024;

/** Creates an account through the UI's sign-up form (a fresh name with `prefix`); resolves once signed in. */
async function createAccount(page: Page, prefix: string): Promise<string> {
  await page.getByRole('button', { name: 'No account yet? Create one' }).click();
  const username = `${prefix}${Date.now().toString(36)}`;
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('a browser test pass phrase');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#whoami', { hasText: username }).waitFor();
  return username;
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha256OfFile = (path: string) =>
  new Promise<string>((done, fail) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => done(hash.digest('hex')))
      .on('error', fail);
  });

/** Resumable uploads cut files in parts of 8 MiB (the service's smallest part size) up to 80 GiB. */
const PART = 8 * 1024 * 1024;

/**
 * Writes a PNG-looking file of `bytes` random bytes (after the PNG signature) in `dir`, 8 MiB at a
 * time (the test never holds it whole); resolves its path and SHA-256 (hex).
 */
function writeLargeFile(dir: string, name: string, bytes: number): { path: string; sha256: string } {
  const path = join(dir, name);
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    writeSync(fd, signature);
    hash.update(signature);
    for (let left = bytes - signature.length; left > 0; left -= PART) {
      const chunk = randomBytes(Math.min(PART, left));
      writeSync(fd, chunk);
      hash.update(chunk);
    }
  } finally {
    closeSync(fd);
  }
  return { path, sha256: hash.digest('hex') };
}

/**
 * Watches the page's part PUTs (cross-origin PUTs carrying `partNumber`, the presigned part URLs):
 * every request sent and every answer, tagged with the phase the test is in.
 */
function watchPartPuts(page: Page, site: string) {
  const log = {
    phase: 'before',
    sent: [] as { phase: string; partNumber: number }[],
    answered: [] as { phase: string; partNumber: number; status: number }[],
    failed: [] as { phase: string; partNumber: number }[],
    listeners: [] as ((entry: { partNumber: number; status: number }) => void)[],
  };
  const partOf = (url: string) => {
    const u = new URL(url);
    if (u.origin === site) return undefined;
    const n = u.searchParams.get('partNumber');
    return n === null ? undefined : Number(n);
  };
  page.on('request', (req: Request) => {
    const n = partOf(req.url());
    if (n !== undefined && req.method() === 'PUT') log.sent.push({ phase: log.phase, partNumber: n });
  });
  page.on('response', (res: Response) => {
    const n = partOf(res.url());
    if (n === undefined || res.request().method() !== 'PUT') return;
    const entry = { phase: log.phase, partNumber: n, status: res.status() };
    log.answered.push(entry);
    for (const l of log.listeners) l(entry);
  });
  page.on('requestfailed', (req: Request) => {
    const n = partOf(req.url());
    if (n !== undefined && req.method() === 'PUT') log.failed.push({ phase: log.phase, partNumber: n });
  });
  /** Resolves once `count` part PUTs have been answered 200 in the current phase. */
  const answered200 = (count: number) =>
    new Promise<void>((done) => {
      const seen = () => log.answered.filter((a) => a.phase === log.phase && a.status === 200).length;
      if (seen() >= count) return done();
      log.listeners.push(() => {
        if (seen() >= count) done();
      });
    });
  return { log, answered200 };
}

/**
 * Lets the first `pass` part PUTs of the page through and holds the others at the browser (they
 * stay on their way) until the returned function is called: then the held ones are dropped (the
 * page has aborted them by then) and every later part goes through.
 */
async function holdPartsAfter(page: Page, site: string, pass: number): Promise<() => Promise<void>> {
  let passed = 0;
  let open = false;
  const held: Route[] = [];
  const isPart = (url: URL) => url.origin !== site && url.searchParams.has('partNumber');
  await page.route(isPart, async (route) => {
    if (open || passed < pass) {
      passed += 1;
      return route.continue();
    }
    held.push(route);
  });
  return async () => {
    open = true;
    for (const route of held) await route.abort().catch(() => undefined);
    await page.unroute(isPart);
  };
}

/** `attempt()`'s value once it resolves, trying again every 250 ms (rejections count as not yet) for at most `timeoutMs`. */
async function eventually<T>(attempt: () => Promise<T>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: not there after ${timeoutMs / 1000} s (${(err as Error).message})`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The bodies of the page's `/complete` requests of resumable uploads, as they are sent. */
function completeBodies(page: Page): unknown[] {
  const bodies: unknown[] = [];
  page.on('request', (req: Request) => {
    if (req.method() === 'POST' && /^\/api\/files\/uploads\/[^/]+\/complete$/.test(new URL(req.url()).pathname)) {
      bodies.push(JSON.parse(req.postData() ?? 'null'));
    }
  });
  return bodies;
}

/** Calls the API from the page with its access token (app.js's `api`); resolves {status, body}. */
async function pageApi<T = Record<string, unknown>>(page: Page, path: string, method = 'GET', body?: unknown): Promise<{ status: number; body: T }> {
  return page.evaluate(
    `(async () => {
      const res = await api(${JSON.stringify(path)}, ${JSON.stringify(
        body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
      )});
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    })()`,
  );
}

describe('e2e (browser): the UI end to end in headless Chromium', () => {
  let stack: RunningStack;
  let browser: Browser;
  let page: Page;
  let base: string;
  let s3: S3Client;

  beforeAll(async () => {
    const executablePath = chromiumPath();
    // Files above 8 MiB go straight from the page to the bucket (a presigned POST to the emulator's
    // origin, not the gateway's), as files above DIRECT_UPLOAD_ABOVE_BYTES do on AWS.
    const ports = await freeStackPorts();
    s3 = new S3Client({ ...LOCAL_AWS, region: LOCAL_AWS.AWS_REGION, credentials: { accessKeyId: LOCAL_AWS.AWS_ACCESS_KEY_ID, secretAccessKey: LOCAL_AWS.AWS_SECRET_ACCESS_KEY }, endpoint: `http://127.0.0.1:${ports.EMULATOR_PORT}`, forcePathStyle: true });
    stack = await startStack(ports, {
      DIRECT_UPLOAD_ABOVE_BYTES: String(DIRECT_ABOVE),
      COPY_IN_PARTS_ABOVE_BYTES: String(COPY_IN_PARTS_ABOVE),
    });
    base = stack.url;
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 800 } });
    page = await context.newPage();
  }, 300_000);

  afterAll(async () => {
    s3?.destroy();
    await browser?.close();
    if (stack) await stopStack(stack);
  }, 60_000);

  it('register -> upload with progress -> listed -> download the same bytes -> refused file -> delete -> sign out', async () => {
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });

    await page.goto(base);
    const username = await createAccount(page, 'ui.');

    // Upload: big enough for several progress events.
    const content = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(6 * 1024 * 1024)]);
    await page.getByLabel('Sensitive (kept in the KMS-encrypted vault)').check();
    await page.locator('#picker').setInputFiles({ name: 'holiday photo.png', mimeType: 'image/png', buffer: content });
    const item = page.locator('#uploads li', { hasText: 'holiday photo.png' });
    await item.locator('.status', { hasText: 'Uploaded' }).waitFor();
    expect(await item.locator('progress').evaluate((p) => (p as unknown as { value: number }).value)).toBe(1);

    const row = page.locator('#files tbody tr', { hasText: 'holiday photo.png' });
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain('6.0 MiB');
    // The list shows the real state: moving until the record says the file is in the vault.
    await expect(row.locator('.badge').textContent()).resolves.toMatch(/^sensitive: (moving to|in) vault$/);
    await row.locator('.badge', { hasText: 'sensitive: in vault' }).waitFor();

    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: /^Download/ }).click()]);
    expect(download.suggestedFilename()).toBe('holiday photo.png');
    const saved = await download.path();
    expect(sha256(readFileSync(saved))).toBe(sha256(content));

    // A refused file explains itself in words.
    await page.locator('#picker').setInputFiles({ name: 'page.html', mimeType: 'text/html', buffer: Buffer.from('<html></html>') });
    await page.locator('#uploads li', { hasText: 'page.html' }).locator('.status.error', { hasText: 'Type not allowed' }).waitFor();

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'ui-main.png'), fullPage: true });

    // Silent refresh: a reload keeps the session through the HttpOnly cookie.
    await page.reload();
    await page.locator('#whoami', { hasText: username }).waitFor();
    await row.waitFor();

    await row.getByRole('button', { name: /^Delete/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    await page.locator('#empty').waitFor();
    expect(await page.locator('#more').isVisible()).toBe(false);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();

    expect(errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
  }, 120_000);

  it('JW-06: an expired access token is renewed once for all waiting requests; two tabs refreshing at once both stay signed in', async () => {
    await page.goto(base);
    const username = await createAccount(page, 'ui.tabs.');

    const refreshes: string[] = [];
    const onRequest = (request: { url(): string }) => {
      if (new URL(request.url()).pathname === '/auth/refresh') refreshes.push(request.url());
    };
    page.on('request', onRequest);
    // Four calls at once with an access token the services refuse (as an expired one): one refresh for all.
    const statuses = await page.evaluate(`(async () => {
      state.token = 'expired-access-token';
      const calls = [api('/api/files/usage'), api('/api/files?limit=5'), api('/api/files/usage'), api('/api/files?limit=1')];
      return (await Promise.all(calls)).map((res) => res.status);
    })()`);
    page.off('request', onRequest);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(refreshes).toHaveLength(1);

    // Two tabs of the same browser load at the same moment: both refresh with the same cookie.
    const second = await page.context().newPage();
    try {
      await Promise.all([page.reload(), second.goto(base)]);
      await Promise.all([page.locator('#whoami', { hasText: username }).waitFor(), second.locator('#whoami', { hasText: username }).waitFor()]);
      // The cookie both tabs ended with is still a live session.
      await second.reload();
      await second.locator('#whoami', { hasText: username }).waitFor();
    } finally {
      await second.close();
    }
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  }, 120_000);

  it('sends at most three files at a time; the others wait their turn, then all are uploaded', async () => {
    await page.goto(base);
    await createAccount(page, 'ui.q.');

    // Hold the first three upload requests until released, to see what waits meanwhile.
    const held: (() => void)[] = [];
    let arrived: () => void = () => undefined;
    const threeHeld = new Promise<void>((resolve) => (arrived = resolve));
    await page.route('**/api/files', async (route) => {
      if (route.request().method() !== 'POST' || held.length >= 3) return route.continue();
      await new Promise<void>((release) => {
        held.push(release);
        if (held.length === 3) arrived();
      });
      return route.continue();
    });
    const files = Array.from({ length: 5 }, (_, i) => ({ name: `queued-${i}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`file ${i}`) }));
    await page.locator('#picker').setInputFiles(files);
    await threeHeld;
    await expect(page.locator('#uploads li .status', { hasText: 'Waiting…' }).count()).resolves.toBe(2);
    expect(held).toHaveLength(3);
    for (const release of held) release();
    for (const f of files) await page.locator('#uploads li', { hasText: f.name }).locator('.status', { hasText: 'Uploaded' }).waitFor();
    await page.unrouteAll({ behavior: 'wait' });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  }, 120_000);

  it("WB-02: a direct upload crosses origins to the bucket, admitted by the bucket's CORS rule for the site's origin only", async () => {
    await page.goto(base);
    await createAccount(page, 'ui.direct.');

    const site = new URL(base).origin;
    const crossOrigin: { method: string; url: string; status: number; allowOrigin?: string }[] = [];
    const onResponse = (res: { url(): string; status(): number; headers(): Record<string, string>; request(): { method(): string } }) => {
      if (new URL(res.url()).origin !== site) {
        crossOrigin.push({ method: res.request().method(), url: res.url(), status: res.status(), allowOrigin: res.headers()['access-control-allow-origin'] });
      }
    };
    page.on('response', onResponse);
    const content = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(DIRECT_ABOVE + 1024 * 1024)]);
    await page.locator('#picker').setInputFiles({ name: 'large scan.png', mimeType: 'image/png', buffer: content });
    const item = page.locator('#uploads li', { hasText: 'large scan.png' });
    // The item loses its Cancel button once the upload has ended, whatever the outcome.
    await item.waitFor();
    await item.getByRole('button', { name: /^Cancel upload/ }).waitFor({ state: 'detached' });
    page.off('response', onResponse);
    await expect(item.locator('.status').textContent()).resolves.toBe('Uploaded');

    // The bytes went to the bucket's origin, and the browser let the page read the answer because
    // the bucket's CORS rule names the site's origin.
    const post = crossOrigin.find((r) => r.method === 'POST');
    expect(post).toBeDefined();
    expect(new URL(post!.url).origin).not.toBe(site);
    expect(post!.status).toBeLessThan(300);
    expect(post!.allowOrigin).toBe(site);

    const row = page.locator('#files tbody tr', { hasText: 'large scan.png' });
    await row.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: /^Download/ }).click()]);
    expect(sha256(readFileSync(await download.path()))).toBe(sha256(content));

    // The same kind of form from a page of another origin: the browser refuses to hand it the answer.
    const target = await page.evaluate(`(async () => {
      const res = await api('/api/files/presign', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'elsewhere.txt', size: 5, contentType: 'text/plain', sensitive: false }) });
      return res.json();
    })()`);
    const elsewhere = await page.context().newPage();
    try {
      await elsewhere.goto('about:blank');
      const outcome = await elsewhere.evaluate(
        `(async (target) => {
          const form = new FormData();
          for (const [k, v] of Object.entries(target.fields)) form.append(k, v);
          form.append('file', new Blob(['hello'], { type: 'text/plain' }));
          try { const res = await fetch(target.url, { method: 'POST', body: form }); return 'read ' + res.status; }
          catch (err) { return 'refused: ' + err.name; }
        })(${JSON.stringify(target)})`,
      );
      expect(outcome).toBe('refused: TypeError');
    } finally {
      await elsewhere.close();
    }
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  }, 180_000);

  describe('resumable direct uploads (files above 64 MiB go to S3 in parts)', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'scs-browser-resumable-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    type Unfinished = { items: { id: string; name: string; partCount: number }[] };
    type Described = { partCount: number; parts: { partNumber: number }[] };

    it('a 200 MiB upload survives a cut link and a reload: the same file picked again sends only the parts S3 lacked; the bytes match, the SHA-256 is the page\'s, the backup a verified copy in parts', async () => {
      const file = writeLargeFile(dir, 'survey scan.png', 200 * 1024 * 1024 + 12345);
      await page.goto(base);
      const username = await createAccount(page, 'ui.resume.');
      const site = new URL(base).origin;
      const { log, answered200 } = watchPartPuts(page, site);

      await page.locator('#picker').setInputFiles(file.path);
      const item = page.locator('#uploads li', { hasText: 'survey scan.png' });
      await item.getByRole('progressbar').waitFor();
      // Some parts are in S3; then the link goes down mid-upload.
      await answered200(4);
      const cutAt = log.sent.length;
      const aPartFailed = new Promise<void>((done) => page.once('requestfailed', () => done()));
      await page.context().setOffline(true);
      await aPartFailed;
      expect(log.sent.length).toBeGreaterThanOrEqual(cutAt);

      // The tab is reloaded (the link back): the session survives, the unfinished upload is listed.
      await page.context().setOffline(false);
      await page.reload();
      await page.locator('#whoami', { hasText: username }).waitFor();
      const listed = page.locator('#unfinished li', { hasText: 'survey scan.png' });
      await listed.getByText('Pick the same file again to resume it', { exact: false }).waitFor();
      const unfinished = await pageApi<Unfinished>(page, '/api/files/uploads');
      expect(unfinished.body.items).toHaveLength(1);
      const { id, partCount } = unfinished.body.items[0]!;
      expect(partCount).toBe(26);
      const before = await pageApi<Described>(page, `/api/files/uploads/${id}`);
      const held = new Set(before.body.parts.map((p) => p.partNumber));
      expect(held.size).toBeGreaterThanOrEqual(4);
      expect(held.size).toBeLessThan(partCount);

      // The same file, picked again: only the missing parts go.
      log.phase = 'after';
      const completions = completeBodies(page);
      await page.locator('#picker').setInputFiles(file.path);
      const resumed = page.locator('#uploads li', { hasText: 'survey scan.png' });
      await resumed.locator('.status', { hasText: 'Uploaded' }).waitFor({ timeout: 180_000 });
      // Above COPY_IN_PARTS_ABOVE_BYTES: the SHA-256 the page computed (again, after the reload) is the file's.
      expect(completions).toEqual([{ checksum: file.sha256 }]);
      await expect(pageApi<{ sha256: string }>(page, `/api/files/${id}`)).resolves.toMatchObject({ status: 200, body: { sha256: file.sha256 } });
      // Its backup is a copy in parts (as above 5 GiB on AWS), verified part by part: the same composite checksum.
      const names = loadConfig(ResourceNames, {});
      const userId = (await pageApi<{ id: string }>(page, '/auth/me')).body.id;
      const head = (Bucket: string) => s3.send(new HeadObjectCommand({ Bucket, Key: `users/${userId}/${id}`, ChecksumMode: 'ENABLED' }));
      const primary = await head(names.PRIMARY_BUCKET);
      expect(primary.ChecksumSHA256).toMatch(/-26$/);
      const backup = await eventually(() => head(names.BACKUP_BUCKET), 'the backup of survey scan.png', 120_000);
      expect({ checksum: backup.ChecksumSHA256, size: backup.ContentLength, encryption: backup.ServerSideEncryption }).toEqual({
        checksum: primary.ChecksumSHA256,
        size: primary.ContentLength,
        encryption: 'aws:kms',
      });
      const resent = log.sent.filter((s) => s.phase === 'after').map((s) => s.partNumber);
      expect(resent.filter((n) => held.has(n))).toEqual([]);
      expect(resent.sort((a, b) => a - b)).toEqual(Array.from({ length: partCount }, (_, i) => i + 1).filter((n) => !held.has(n)));
      await expect(page.locator('#unfinished li').count()).resolves.toBe(0);
      expect(await page.evaluate('Object.keys(localStorage).filter((k) => localStorage.getItem(k) !== "{}")')).toEqual([]);

      const row = page.locator('#files tbody tr', { hasText: 'survey scan.png' });
      await row.waitFor();
      const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: /^Download/ }).click()]);
      await expect(sha256OfFile(await download.path())).resolves.toBe(file.sha256);
      await download.delete();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    }, 300_000);

    it('pause stops the parts, resume sends the rest after the access token has expired (renewed once), no part stored twice', async () => {
      const file = writeLargeFile(dir, 'paused.png', 9 * PART - 1000);
      await page.goto(base);
      await createAccount(page, 'ui.pause.');
      const { log, answered200 } = watchPartPuts(page, new URL(base).origin);
      const release = await holdPartsAfter(page, new URL(base).origin, 1);
      await page.locator('#picker').setInputFiles(file.path);
      const item = page.locator('#uploads li', { hasText: 'paused.png' });
      await answered200(1);
      await item.getByRole('button', { name: 'Pause upload of paused.png' }).click();
      await item.locator('.status', { hasText: 'Paused' }).waitFor();
      await release();
      const resume = item.getByRole('button', { name: 'Resume upload of paused.png' });
      await expect(resume.isEnabled()).resolves.toBe(true);
      const refreshes: string[] = [];
      page.on('request', (req) => {
        if (new URL(req.url()).pathname === '/auth/refresh') refreshes.push(req.url());
      });
      await page.evaluate(`state.token = 'expired-access-token'`);
      // Paused means paused: nothing is on its way (every part sent has been answered or aborted).
      expect(log.sent.length).toBe(log.answered.length + log.failed.length);
      const completions = completeBodies(page);
      await resume.focus();
      await page.keyboard.press('Enter');
      await item.locator('.status', { hasText: 'Uploaded' }).waitFor();
      expect(refreshes).toHaveLength(1);
      // Below COPY_IN_PARTS_ABOVE_BYTES S3 computes the SHA-256; the service compared it with the page's.
      expect(completions).toEqual([{ checksum: file.sha256 }]);
      const stored = log.answered.filter((a) => a.status === 200).map((a) => a.partNumber);
      expect(new Set(stored).size).toBe(stored.length);
      expect(stored.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await expect(item.getByRole('progressbar').evaluate((p) => (p as unknown as { value: number }).value)).resolves.toBe(1);
      await page.locator('#files tbody tr', { hasText: 'paused.png' }).waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    }, 180_000);

    it('a part refused because its URL expired (403) gets a fresh URL and is sent again, without the user noticing', async () => {
      const file = writeLargeFile(dir, 'expiring.png', 9 * PART - 500);
      await page.goto(base);
      await createAccount(page, 'ui.expiry.');
      const site = new URL(base).origin;
      const { log } = watchPartPuts(page, site);
      const partTwo = (url: URL) => url.origin !== site && url.searchParams.get('partNumber') === '2';
      let refused = 0;
      await page.route(partTwo, async (route) => {
        if (refused > 0) return route.continue();
        refused += 1;
        // S3's answer to a URL whose signature, or the temporary credentials behind it, expired
        // (the emulator does not enforce expiry): its own headers (CORS included), status 403.
        const response = await route.fetch();
        await route.fulfill({
          response,
          status: 403,
          contentType: 'application/xml',
          body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>',
        });
      });
      const urlsAskedFor: number[] = [];
      page.on('request', (req) => {
        if (req.method() === 'POST' && /^\/api\/files\/uploads\/[^/]+\/parts$/.test(new URL(req.url()).pathname)) {
          for (const p of (JSON.parse(req.postData() ?? '{}') as { parts: { partNumber: number }[] }).parts) urlsAskedFor.push(p.partNumber);
        }
      });
      await page.locator('#picker').setInputFiles(file.path);
      const item = page.locator('#uploads li', { hasText: 'expiring.png' });
      await item.locator('.status', { hasText: 'Uploaded' }).waitFor({ timeout: 120_000 });
      await page.unroute(partTwo);
      expect(refused).toBe(1);
      // Part 2's URL was asked for twice (the second time after the refusal), every other part's once.
      expect(urlsAskedFor.filter((n) => n === 2)).toHaveLength(2);
      expect(new Set(urlsAskedFor).size).toBe(9);
      expect(log.answered.filter((a) => a.partNumber === 2).map((a) => a.status)).toEqual([403, 200]);
      await page.locator('#files tbody tr', { hasText: 'expiring.png' }).waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    }, 180_000);

    it('cancel aborts the upload at the service: nothing unfinished is left, and the reserved quota is free again', async () => {
      const file = writeLargeFile(dir, 'cancelled.png', 9 * PART);
      await page.goto(base);
      await createAccount(page, 'ui.cancel.');
      const { answered200 } = watchPartPuts(page, new URL(base).origin);
      const release = await holdPartsAfter(page, new URL(base).origin, 1);
      await page.locator('#picker').setInputFiles(file.path);
      const item = page.locator('#uploads li', { hasText: 'cancelled.png' });
      await answered200(1);

      // While it runs, its size is reserved: a second upload of all that is left of the quota is refused.
      type Usage = { usedBytes: number; quotaBytes: number };
      const usage = (await pageApi<Usage>(page, '/api/files/usage')).body;
      const rest = { name: 'rest.png', size: usage.quotaBytes - usage.usedBytes, contentType: 'image/png', sensitive: false };
      await expect(pageApi(page, '/api/files/uploads', 'POST', rest)).resolves.toMatchObject({ status: 413, body: { code: 'QUOTA_EXCEEDED' } });

      await item.getByRole('button', { name: 'Cancel upload of cancelled.png' }).click();
      await item.locator('.status', { hasText: 'Cancelled' }).waitFor();
      await release();
      await expect(pageApi<Unfinished>(page, '/api/files/uploads')).resolves.toEqual({ status: 200, body: { items: [] } });
      expect(await page.evaluate('Object.keys(localStorage).filter((k) => localStorage.getItem(k) !== "{}")')).toEqual([]);
      const freed = await pageApi<{ id: string }>(page, '/api/files/uploads', 'POST', rest);
      expect(freed.status).toBe(201);
      await expect(pageApi(page, `/api/files/uploads/${freed.body.id}`, 'DELETE')).resolves.toMatchObject({ status: 204 });
      await page.reload();
      await page.locator('#empty').waitFor();
      expect(await page.locator('#unfinished-section').isVisible()).toBe(false);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    }, 180_000);
  });

  it('shows a wrong password as an error in words', async () => {
    await page.goto(base);
    await page.getByLabel('Username').fill('nobody.here');
    await page.getByLabel('Password').fill('definitely not right');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
  }, 60_000);
});
