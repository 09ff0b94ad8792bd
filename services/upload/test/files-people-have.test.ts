import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { UsageRepository } from '@scs/common/files';
import {
  buildUploadApp,
  closeAuth,
  newUser,
  officeFile,
  parseDisposition,
  pngBytes,
  s3Leftovers,
  sha256,
  upload,
  type UploadTestApp,
} from './helpers';

/**
 * Files and names as people really have them, through the API (app.inject; the gateway runs the
 * same inputs in tests/e2e/test/files.e2e.test.ts).
 */
let t: UploadTestApp;
beforeAll(async () => {
  t = await buildUploadApp();
});
afterAll(async () => {
  await t.app.close();
  await closeAuth();
});

const usageOf = (userId: string) => new UsageRepository(t.aws.dynamo, t.config.FILES_TABLE, console).usage(userId);

async function stores(name: string, content: Buffer) {
  const user = await newUser();
  const res = await upload(t.app, user.headers, [{ name: 'file', filename: name, content }]);
  return { user, res };
}

describe('FU-07: names are kept as the browser sent them', () => {
  it.each([
    'Target%20Archery.txt',
    'notes%2Fsecret.txt',
    'growth_%25_of_GDP.csv',
    'sales 50%off %41.txt',
    'Minutes; March.txt',
    'a*b.txt',
    '10:30 meeting.txt',
    'what? <draft> | v2.txt',
    '.profile.txt',
    '👨‍👩‍👧 family.png',
    'می‌خواهم.txt',
  ])('%j is stored, listed and downloaded under exactly that name', async (name) => {
    const content = name.endsWith('.png') ? pngBytes(100) : Buffer.from('some text');
    const { user, res } = await stores(name, content);
    expect(res.statusCode).toBe(201);
    expect(res.json().name).toBe(name);
    const listed = (await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items;
    expect(listed.map((f: { name: string }) => f.name)).toEqual([name]);
    const head = await t.aws.s3.send(new HeadObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: `users/${user.userId}/${res.json().id}` }));
    expect((await parseDisposition(head.ContentDisposition ?? '')).parameters.filename).toBe(name);
  });

  it('a name with double quotes, as browsers send it (%22) and as curl sends it (\\"), is stored with its quotes', async () => {
    expect((await stores('say %22hi%22.txt', Buffer.from('x'))).res.json().name).toBe('say "hi".txt');
    expect((await stores('say \\"hi\\".txt', Buffer.from('x'))).res.json().name).toBe('say "hi".txt');
  });

  it('a name of 250 CJK characters is stored whole, and not as S3 user metadata (AWS caps that at 2 KB)', async () => {
    const name = `${'漢'.repeat(246)}.txt`;
    const { user, res } = await stores(name, Buffer.from('long name'));
    expect(res.statusCode).toBe(201);
    expect(res.json().name).toBe(name);
    const head = await t.aws.s3.send(new HeadObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: `users/${user.userId}/${res.json().id}` }));
    const metadataBytes = Object.entries(head.Metadata ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(metadataBytes).toBeLessThan(2048);
    expect((await parseDisposition(head.ContentDisposition ?? '')).parameters.filename).toBe(name);
  });

  it.each([
    ['invoice\u202Efdp.txt', 'U+202E RIGHT-TO-LEFT OVERRIDE'],
    ['report\u2066.txt', 'U+2066 LEFT-TO-RIGHT ISOLATE'],
    ['pay\u200Broll.txt', 'U+200B ZERO WIDTH SPACE'],
    ['\u200Dstart.txt', 'U+200D ZERO WIDTH JOINER'],
    ['bom\uFEFF.txt', 'U+FEFF'],
    ['line\u2028break.txt', 'control characters'],
    [`${'a'.repeat(252)}.txt`, 'longer than 255 characters'],
    ['a.php;.jpg', 'hides a second extension (.php before ";")'],
    ['a.php%00.jpg', 'hides a second extension (.php before "%00")'],
  ])('FU-04: %j is refused (400 INVALID_FILE_NAME) and the message names the problem', async (name, problem) => {
    const { user, res } = await stores(name, Buffer.from('text'));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'INVALID_FILE_NAME', message: expect.stringContaining(problem) });
    expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
  });
});

describe('FU-05/FU-08: Office files whatever the order of their zip entries', () => {
  it.each([
    ['docx', 'report.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['xlsx', 'budget.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    ['pptx', 'slides.pptx', 'application/vnd.openxmlformats-officedocument.presentationml.presentation'],
  ] as const)('a valid 2 MiB .%s with [Content_Types].xml as the last entry is stored', async (kind, name, contentType) => {
    const content = officeFile(kind);
    const { res } = await stores(name, content);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ name, size: content.length, sha256: sha256(content), contentType });
  });

  it('a workbook named .docx is refused in words, and nothing of it is left in S3', async () => {
    const { user, res } = await stores('letter.docx', officeFile('xlsx', 9 * 1024 * 1024));
    expect(res.statusCode).toBe(415);
    expect(res.json().message).toBe('"letter.docx" is an Excel workbook (.xlsx), not a Word document (.docx): rename it to .xlsx and upload it again');
    expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
  });
});

describe('FU-05/FU-06: text in the encodings people save', () => {
  const windows1252Csv = Buffer.from([...Buffer.from('Name;City;Amount\r\nJos'), 0xe9, ...Buffer.from(';Z'), 0xfc, ...Buffer.from('rich;12,50 '), 0x80, 0x0d, 0x0a]);
  it.each([
    ['a spreadsheet CSV in Windows-1252', 'export.csv', windows1252Csv, 'text/csv; charset=windows-1252'],
    ['a Latin-1 text file', 'notes.txt', Buffer.from('Ça coûte 5 £, señor.\n', 'latin1'), 'text/plain; charset=windows-1252'],
    ['a UTF-16 text file with a byte-order mark', 'wide.txt', Buffer.from('\ufeffUnicode notes: 日本語\r\n', 'utf16le'), 'text/plain; charset=utf-16le'],
    ['a UTF-8 CSV with a byte-order mark', 'excel-utf8.csv', Buffer.from('\ufeffName;City\r\nJosé;Zürich\r\n'), 'text/csv; charset=utf-8'],
  ])('%s is stored, and downloads with its charset', async (_label, name, content, contentType) => {
    const { user, res } = await stores(name, content);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ size: content.length, sha256: sha256(content), contentType });
    const head = await t.aws.s3.send(new HeadObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: `users/${user.userId}/${res.json().id}` }));
    expect(head.ContentType).toBe(contentType);
    const link = await t.app.inject({ method: 'GET', url: `/api/files/${res.json().id}/download?redirect=false`, headers: user.headers });
    expect(new URL(link.json().url).searchParams.get('response-content-type')).toBe(contentType);
  });

  it('FU-06: markup in UTF-16 is refused after decoding, with a reason a person can act on', async () => {
    const { res } = await stores('page.txt', Buffer.from('\ufeff<html><script>alert(1)</script>', 'utf16le'));
    expect(res.statusCode).toBe(415);
    expect(res.json().message).toBe('"page.txt" contains web page markup (HTML, SVG or XML), which is not accepted because a browser could run it');
  });
});

describe('limits of listing', () => {
  it('nextCursor only when more files follow: a page that is exactly full ends the listing', async () => {
    const user = await newUser();
    for (const name of ['a.txt', 'b.txt']) expect((await upload(t.app, user.headers, [{ name: 'file', filename: name, content: Buffer.from(name) }])).statusCode).toBe(201);
    const full = await t.app.inject({ method: 'GET', url: '/api/files?limit=2', headers: user.headers });
    expect(full.json()).toMatchObject({ items: [expect.objectContaining({ name: 'b.txt' }), expect.objectContaining({ name: 'a.txt' })], nextCursor: null });
    const first = await t.app.inject({ method: 'GET', url: '/api/files?limit=1', headers: user.headers });
    expect(first.json().nextCursor).toBe(first.json().items[0].id);
    const last = await t.app.inject({ method: 'GET', url: `/api/files?limit=1&cursor=${first.json().nextCursor}`, headers: user.headers });
    expect(last.json()).toMatchObject({ items: [expect.objectContaining({ name: 'a.txt' })], nextCursor: null });
  });
});

describe('storage errors are answered for what they are', () => {
  it('R1: a storage error no retry will fix (NoSuchBucket) is logged with its cause and answered 500, not "retry shortly"', async () => {
    const broken = await buildUploadApp({ PRIMARY_BUCKET: 'scs-no-such-bucket' });
    try {
      const user = await newUser();
      const res = await upload(broken.app, user.headers, [{ name: 'file', filename: 'a.png', content: pngBytes(1000) }]);
      expect(res.statusCode).toBe(500);
      expect(res.json()).toMatchObject({ code: 'INTERNAL_ERROR' });
      expect(res.headers['retry-after']).toBeUndefined();
      const logged = await broken.waitForLog((l) => l.msg === 'request failed: internal error');
      expect(logged.err).toMatchObject({ name: 'NoSuchBucket' });
      // Its reservation was released.
      expect(await usageOf(user.userId)).toEqual({ usedBytes: 0, reservedBytes: 0 });
    } finally {
      await broken.app.close();
    }
  });
});
