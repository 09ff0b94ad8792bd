import { buildUploadApp, closeAuth, newUser, type UploadTestApp } from './helpers';

let t: UploadTestApp;
beforeAll(async () => {
  t = await buildUploadApp();
});
afterAll(async () => {
  await t.app.close();
  await closeAuth();
});

describe('the browser UI is served by the upload service', () => {
  it('serves the page, its script and its style publicly', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<script src="/app.js" defer></script>');
    expect((await t.app.inject({ method: 'GET', url: '/app.js' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/app.css' })).statusCode).toBe(200);
  });

  it('WB-03: strict CSP with no inline script, no framing; nosniff and HSTS', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/' });
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("base-uri 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['strict-transport-security']).toBeDefined();
    expect(page.body).not.toMatch(/<script>(?!<\/script>)|\son[a-z]+=/i);
  });

  it('GET /api/files/usage tells the UI the limits and what is used', async () => {
    const user = await newUser();
    const res = await t.app.inject({ method: 'GET', url: '/api/files/usage', headers: user.headers });
    expect(res.json()).toEqual({
      usedBytes: 0,
      quotaBytes: t.config.QUOTA_BYTES,
      maxUploadBytes: t.config.MAX_UPLOAD_BYTES,
      directUploadAboveBytes: t.config.DIRECT_UPLOAD_ABOVE_BYTES,
      allowedTypes: expect.arrayContaining(['pdf', 'png', 'docx']),
    });
    expect((await t.app.inject({ method: 'GET', url: '/api/files/usage' })).statusCode).toBe(401);
  });
});
