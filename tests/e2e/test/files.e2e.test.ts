import { createHash, randomBytes } from 'node:crypto';
import { pngBytes as png, zipBytes as zip } from '@scs/testing/files';
import { freePort } from '@scs/local-stack/emulator';
import { groupAlive, type RunningStack, startStack, stopStack } from '@scs/testing/stack';

/**
 * END TO END: files as people have them and direct uploads, through the real gateway of
 * `npm start` over real connections (fetch), the way the browser UI and scripts use the API.
 * The per-user quota is 4 MiB here, so a reservation released more than once would show.
 */
const QUOTA = 4 * 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('e2e: files and direct uploads through the gateway', () => {
  let stack: RunningStack | undefined;
  let base: string;

  beforeAll(async () => {
    stack = await startStack(
      {
        EMULATOR_PORT: await freePort(),
        AUTH_PORT: await freePort(),
        UPLOAD_PORT: await freePort(),
        BACKUP_PORT: await freePort(),
        GATEWAY_PORT: await freePort(),
      },
      { QUOTA_BYTES: String(QUOTA) },
    );
    base = stack.url.replace('localhost', '127.0.0.1');
  }, 300_000);

  afterAll(async () => {
    if (stack) await stopStack(stack);
    if (stack?.child.pid && groupAlive(stack.child.pid)) process.kill(-stack.child.pid, 'SIGKILL');
  }, 60_000);

  async function newUser(): Promise<Record<string, string>> {
    const username = `e2e.files.${randomBytes(5).toString('hex')}`;
    const password = 'a long pass phrase for files';
    const json = { 'content-type': 'application/json' };
    expect((await fetch(`${base}/auth/register`, { method: 'POST', headers: json, body: JSON.stringify({ username, password }) })).status).toBe(201);
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: json, body: JSON.stringify({ username, password }) });
    return { authorization: `Bearer ${((await login.json()) as { accessToken: string }).accessToken}` };
  }

  async function send(headers: Record<string, string>, name: string, content: Buffer) {
    const form = new FormData();
    form.append('file', new Blob([content]), name);
    const res = await fetch(`${base}/api/files`, { method: 'POST', headers, body: form });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  const api = async (headers: Record<string, string>, path: string, method = 'GET', body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> & { items?: { name: string }[] } };
  };

  async function presignAndPost(headers: Record<string, string>, name: string, content: Buffer, changed: Record<string, string> = {}) {
    const p = await api(headers, '/api/files/presign', 'POST', { name, size: content.length, contentType: 'image/png', sensitive: false });
    expect(p.status).toBe(201);
    const target = p.body as { id: string; url: string; fields: Record<string, string> };
    const form = new FormData();
    for (const [k, v] of Object.entries({ ...target.fields, ...changed })) form.append(k, v);
    form.append('file', new Blob([content]), name);
    const posted = await fetch(target.url, { method: 'POST', body: form });
    await posted.arrayBuffer();
    expect(posted.status).toBeLessThan(300);
    return target;
  }

  const complete = (headers: Record<string, string>, id: string) => api(headers, `/api/files/${id}/complete`, 'POST');

  it('FU-07: names arrive and stay as sent; a name that hides its real extension is refused', async () => {
    const headers = await newUser();
    for (const name of ['Target%20Archery.txt', 'growth_%25_of_GDP.csv', 'sales 50%off %41.txt', 'Minutes; March "final".txt']) {
      const res = await send(headers, name, Buffer.from('text'));
      expect({ name, status: res.status, stored: res.body.name }).toEqual({ name, status: 201, stored: name });
    }
    const spoof = await send(headers, 'invoice\u202Efdp.txt', Buffer.from('text'));
    expect(spoof).toMatchObject({ status: 400, body: { code: 'INVALID_FILE_NAME' } });
  }, 60_000);

  it('FU-05/FU-06: a docx with [Content_Types].xml last and a Windows-1252 CSV are stored', async () => {
    const headers = await newUser();
    const docx = zip([
      { name: 'word/media/image1.png', data: png(2 * 1024 * 1024) },
      { name: 'word/document.xml', data: Buffer.from('<w:document/>') },
      { name: '[Content_Types].xml', data: Buffer.from('<Types/>') },
    ]);
    expect(await send(headers, 'report.docx', docx)).toMatchObject({ status: 201, body: { size: docx.length, sha256: sha256(docx) } });
    const csv = Buffer.from([...Buffer.from('Jos'), 0xe9, ...Buffer.from(';Z'), 0xfc, ...Buffer.from('rich;12,50 '), 0x80, 0x0d, 0x0a]);
    expect(await send(headers, 'export.csv', csv)).toMatchObject({ status: 201, body: { contentType: 'text/csv; charset=windows-1252' } });
    const listing = await api(headers, '/api/files?limit=2');
    expect(listing.body).toMatchObject({ nextCursor: null });
    expect(listing.body.items).toHaveLength(2);
  }, 60_000);

  it('FU-03: six parallel /complete of a good upload: one file, its bytes counted once', async () => {
    const headers = await newUser();
    const content = png(1024 * 1024);
    const target = await presignAndPost(headers, 'photo.png', content);
    const answers = await Promise.all(Array.from({ length: 6 }, () => complete(headers, target.id)));
    for (const a of answers) {
      if (a.status === 201) expect(a.body).toMatchObject({ id: target.id, sha256: sha256(content) });
      else expect(a).toMatchObject({ status: 409, body: { code: 'UPLOAD_IN_PROGRESS' } });
    }
    expect(answers.some((a) => a.status === 201)).toBe(true);
    expect((await api(headers, '/api/files/usage')).body.usedBytes).toBe(content.length);
    // Counted once: 3 MiB more fit the 4 MiB quota, another byte does not.
    expect((await api(headers, '/api/files/presign', 'POST', { name: 'b.png', size: 3 * 1024 * 1024, contentType: 'image/png', sensitive: false })).status).toBe(201);
    expect((await api(headers, '/api/files/presign', 'POST', { name: 'c.png', size: 1, contentType: 'image/png', sensitive: false })).body.code).toBe('QUOTA_EXCEEDED');
  }, 60_000);

  it('FU-03: six parallel /complete of an upload that fails verification: refused once, its reservation released once', async () => {
    const headers = await newUser();
    const lie = Buffer.concat([Buffer.from('<html>'), Buffer.alloc(3 * 1024 * 1024)]);
    const target = await presignAndPost(headers, 'photo.png', lie);
    const answers = await Promise.all(Array.from({ length: 6 }, () => complete(headers, target.id)));
    expect(answers.filter((a) => a.status === 415)).toHaveLength(1);
    for (const a of answers) expect([404, 409, 415]).toContain(a.status);
    // Released once: 3 MiB fit again, but not 3 MiB more on top.
    expect((await api(headers, '/api/files/presign', 'POST', { name: 'a.png', size: 3 * 1024 * 1024, contentType: 'image/png', sensitive: false })).status).toBe(201);
    expect((await api(headers, '/api/files/presign', 'POST', { name: 'b.png', size: 3 * 1024 * 1024, contentType: 'image/png', sensitive: false })).body.code).toBe('QUOTA_EXCEEDED');
  }, 60_000);

  it('a completed file is not writable through its upload form, and an object not stored as issued is refused', async () => {
    const headers = await newUser();
    const verified = png(100_000);
    const target = await presignAndPost(headers, 'photo.png', verified);
    expect((await complete(headers, target.id)).status).toBe(201);
    const form = new FormData();
    for (const [k, v] of Object.entries(target.fields)) form.append(k, v);
    form.append('file', new Blob([png(100_000)]), 'photo.png');
    expect((await fetch(target.url, { method: 'POST', body: form })).status).toBeLessThan(300);
    const link = (await api(headers, `/api/files/${target.id}/download?redirect=false`)).body as { url: string };
    expect(sha256(Buffer.from(await (await fetch(link.url)).arrayBuffer()))).toBe(sha256(verified));

    const other = await presignAndPost(headers, 'other.png', png(1000), { 'Content-Type': 'text/html' });
    expect(await complete(headers, other.id)).toMatchObject({ status: 400, body: { code: 'UPLOAD_MISMATCH' } });
  }, 60_000);
});
