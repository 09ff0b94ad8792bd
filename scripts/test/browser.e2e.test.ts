import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { freeStackPorts, type RunningStack, startStack, stopStack } from '@scs/testing/stack';

/**
 * END TO END in a real browser: headless Chromium (Debian's, driven by playwright-core) against
 * `npm start`: register, sign in, upload with progress, see the file listed, download the same
 * bytes, a refused file shows its error in words, silent refresh survives a reload, delete, sign out.
 */
const REPO_ROOT = resolve(__dirname, '../..');
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

describe('e2e (browser): the UI end to end in headless Chromium', () => {
  let stack: RunningStack;
  let browser: Browser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    const executablePath = chromiumPath();
    // Files above 8 MiB go straight from the page to the bucket (a presigned POST to the emulator's
    // origin, not the gateway's), as files above DIRECT_UPLOAD_ABOVE_BYTES do on AWS.
    stack = await startStack(await freeStackPorts(), { DIRECT_UPLOAD_ABOVE_BYTES: String(DIRECT_ABOVE) });
    base = stack.url;
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 800 } });
    page = await context.newPage();
  }, 300_000);

  afterAll(async () => {
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

  it('shows a wrong password as an error in words', async () => {
    await page.goto(base);
    await page.getByLabel('Username').fill('nobody.here');
    await page.getByLabel('Password').fill('definitely not right');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
  }, 60_000);
});
