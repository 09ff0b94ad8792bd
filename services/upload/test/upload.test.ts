import { GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '@scs/common';
import {
  buildUploadApp,
  closeAuth,
  multipart,
  newUser,
  pngBytes,
  s3Leftovers,
  sha256,
  upload,
  type UploadTestApp,
  parseDisposition,
} from './helpers';

let t: UploadTestApp;
beforeAll(async () => {
  t = await buildUploadApp();
});
afterAll(async () => {
  await t.app.close();
  await closeAuth();
});

const MiB = 1024 * 1024;

async function download(headers: Record<string, string>, id: string) {
  const res = await t.app.inject({ method: 'GET', url: `/api/files/${id}/download`, headers });
  expect(res.statusCode).toBe(302);
  const location = String(res.headers.location);
  const got = await fetch(location);
  return { location, response: got, bytes: Buffer.from(await got.arrayBuffer()) };
}

describe('POST /api/files streams to S3', () => {
  it.each([
    ['0 bytes', 'empty.txt', Buffer.alloc(0)],
    ['1 byte', 'one.txt', Buffer.from('x')],
    ['5 MiB - 1', 'a.png', pngBytes(5 * MiB - 1)],
    ['5 MiB', 'b.png', pngBytes(5 * MiB)],
    ['5 MiB + 1', 'c.png', pngBytes(5 * MiB + 1)],
    ['64 MiB + 3', 'd.png', pngBytes(64 * MiB + 3)],
  ])('FU-15: %s round-trips with the same SHA-256', async (_label, filename, content) => {
    const user = await newUser();
    const res = await upload(t.app, user.headers, [{ name: 'file', filename, content }]);
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: filename,
      size: content.length,
      contentType: filename.endsWith('.png') ? 'image/png' : 'text/plain; charset=utf-8',
      sha256: sha256(content),
      sensitive: false,
      createdAt: expect.any(String),
    });
    const got = await download(user.headers, body.id);
    expect(got.response.status).toBe(200);
    expect(got.bytes.length).toBe(content.length);
    expect(sha256(got.bytes)).toBe(sha256(content));
    const tags = await t.aws.s3.send(new GetObjectTaggingCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: `users/${user.userId}/${body.id}` }));
    expect(tags.TagSet).toEqual(expect.arrayContaining([{ Key: 'sha256', Value: sha256(content) }]));
  }, 120_000);

  it('stores the object under a generated key, encrypted, tagged at creation, with owner metadata', async () => {
    const user = await newUser();
    const res = await upload(t.app, user.headers, [
      { name: 'sensitive', value: 'true' },
      { name: 'file', filename: '../../etc/passwd.txt', content: Buffer.from('hello') },
    ]);
    expect(res.statusCode).toBe(201);
    const { id, name, sensitive } = res.json();
    expect(name).toBe('passwd.txt');
    expect(sensitive).toBe(true);
    const key = `users/${user.userId}/${id}`;
    const head = await t.aws.s3.send(new HeadObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: key }));
    expect(head.ServerSideEncryption).toBe('AES256');
    // The name is not user metadata (AWS caps that at 2 KB): it is in the record and the disposition.
    expect(head.Metadata).toEqual({ owner: user.userId, 'file-id': id });
    expect(await parseDisposition(head.ContentDisposition ?? '')).toEqual({ type: 'attachment', parameters: { filename: 'passwd.txt' } });
    expect(head.ContentType).toBe('text/plain; charset=utf-8');
    const tags = await t.aws.s3.send(new GetObjectTaggingCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: key }));
    expect(tags.TagSet).toEqual(expect.arrayContaining([{ Key: 'sensitive', Value: 'true' }]));
  });

  it('accepts ?sensitive=true as well', async () => {
    const user = await newUser();
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'n.txt', content: Buffer.from('n') }], '/api/files?sensitive=true');
    expect(res.json().sensitive).toBe(true);
  });

  it('FU-05: the stored type is decided from the content, never from the client', async () => {
    const user = await newUser();
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'pic.png', content: pngBytes(2048), type: 'text/html' }]);
    expect(res.statusCode).toBe(201);
    expect(res.json().contentType).toBe('image/png');
  });

  it.each([
    ['PNG bytes named .jpg', 'photo.jpg', pngBytes(4096)],
    ['HTML named .txt', 'notes.txt', Buffer.from('<!DOCTYPE html><script>alert(1)</script>')],
    ['SVG named .txt', 'logo.txt', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"></svg>')],
    ['binary named .csv', 'data.csv', Buffer.from([0, 1, 2, 3])],
    ['a zip named .docx', 'doc.docx', Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(100)])],
    ['text named .pdf', 'report.pdf', Buffer.from('not a pdf')],
  ])('FU-05: %s is refused with 415 and nothing is stored', async (_label, filename, content) => {
    const user = await newUser();
    const res = await upload(t.app, user.headers, [{ name: 'file', filename, content }]);
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('UNSUPPORTED_FILE_TYPE');
    expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
  });

  it.each([
    ['a.jpg.php', 415],
    ['a.php%00.jpg', 400],
    ['a.jpg.', 400],
    ['a.jpg ', 400],
    ['a.php;.jpg', 400],
    ['page.html', 415],
    ['image.svg', 415],
    ['run.exe', 415],
    ['script.sh', 415],
    ['noextension', 400],
    ['.hidden', 400],
    ['a\r\nX-Injected: 1.txt', 400],
  ])('FU-04/FU-07: file name %j is refused (%i)', async (filename, status) => {
    const user = await newUser();
    const res = await upload(t.app, user.headers, [{ name: 'file', filename, content: Buffer.from('text content') }]);
    expect(res.statusCode).toBe(status);
    expect(res.json().code).toBe(status === 415 ? 'UNSUPPORTED_FILE_TYPE' : 'INVALID_FILE_NAME');
  });
});

describe('refusals leave nothing behind', () => {
  let small: UploadTestApp;
  beforeAll(async () => {
    small = await buildUploadApp({ MAX_UPLOAD_BYTES: String(MiB), QUOTA_BYTES: String(3 * MiB) });
  });
  afterAll(async () => small.app.close());

  it('FU-01: a file over the limit is 413 FILE_TOO_LARGE: no object, no open multipart upload, no record', async () => {
    const user = await newUser();
    // Just over the limit, so the request itself looks acceptable and the stream has to be cut.
    const res = await upload(small.app, user.headers, [{ name: 'file', filename: 'big.png', content: pngBytes(MiB + 10) }]);
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'FILE_TOO_LARGE', message: expect.stringContaining('1 MiB') });
    expect(await s3Leftovers(small.aws, small.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
    const list = await small.app.inject({ method: 'GET', url: '/api/files', headers: user.headers });
    expect(list.json().items).toEqual([]);
  });

  it('FU-01: a request whose length is far over the limit is refused before its body is read', async () => {
    const user = await newUser();
    const res = await upload(small.app, user.headers, [{ name: 'file', filename: 'huge.png', content: pngBytes(3 * MiB) }]);
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('FILE_TOO_LARGE');
  });

  it('FU-03: 8 parallel uploads never overshoot the quota', async () => {
    const user = await newUser();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => upload(small.app, user.headers, [{ name: 'file', filename: `p${i}.png`, content: pngBytes(900 * 1024) }])),
    );
    const ok = results.filter((r) => r.statusCode === 201);
    const refused = results.filter((r) => r.statusCode === 413);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(ok.length + refused.length).toBe(8);
    for (const r of refused) expect(r.json().code).toBe('QUOTA_EXCEEDED');
    expect(ok.length * 900 * 1024).toBeLessThanOrEqual(3 * MiB);
    const listed = (await small.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items;
    expect(listed).toHaveLength(ok.length);
    // Deleting a file frees its share of the quota.
    await small.app.inject({ method: 'DELETE', url: `/api/files/${ok[0]?.json().id}`, headers: user.headers });
    const again = await upload(small.app, user.headers, [{ name: 'file', filename: 'again.png', content: pngBytes(900 * 1024) }]);
    expect(again.statusCode).toBe(201);
  });

  it('FU-02: a flood of fields or several files is a fast 400 BAD_MULTIPART', async () => {
    const user = await newUser();
    const fields = Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, value: 'x' }));
    const flood = await upload(small.app, user.headers, [...fields, { name: 'file', filename: 'a.txt', content: Buffer.from('a') }]);
    expect(flood.statusCode).toBe(400);
    expect(flood.json().code).toBe('BAD_MULTIPART');
    const two = await upload(small.app, user.headers, [
      { name: 'file', filename: 'a.txt', content: Buffer.from('a') },
      { name: 'file', filename: 'b.txt', content: Buffer.from('b') },
    ]);
    expect(two.statusCode).toBe(400);
    expect(two.json().code).toBe('BAD_MULTIPART');
    expect(await s3Leftovers(small.aws, small.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
  });

  it('FU-13: a __proto__ field is refused', async () => {
    const user = await newUser();
    const res = await upload(small.app, user.headers, [
      { name: '__proto__', value: 'x' },
      { name: 'file', filename: 'a.txt', content: Buffer.from('a') },
    ]);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('BAD_MULTIPART');
  });

  it('400 NO_FILE without a file part, BAD_MULTIPART for a wrong field or a non-multipart body', async () => {
    const user = await newUser();
    const none = await upload(small.app, user.headers, [{ name: 'sensitive', value: 'true' }]);
    expect(none.statusCode).toBe(400);
    expect(none.json().code).toBe('NO_FILE');
    const wrongField = await upload(small.app, user.headers, [{ name: 'document', filename: 'a.txt', content: Buffer.from('a') }]);
    expect(wrongField.json().code).toBe('BAD_MULTIPART');
    const badFlag = await upload(small.app, user.headers, [{ name: 'sensitive', value: 'yes' }, { name: 'file', filename: 'a.txt', content: Buffer.from('a') }]);
    expect(badFlag.json().code).toBe('BAD_MULTIPART');
    const json = await small.app.inject({ method: 'POST', url: '/api/files', headers: user.headers, payload: { file: 'x' } });
    expect(json.statusCode).toBe(400);
    expect(json.json().code).toBe('BAD_MULTIPART');
    const truncated = multipart([{ name: 'file', filename: 'a.txt', content: Buffer.from('abc') }]);
    const cut = await small.app.inject({
      method: 'POST',
      url: '/api/files',
      headers: { ...user.headers, ...truncated.headers },
      payload: truncated.payload.subarray(0, truncated.payload.length - 20),
    });
    expect(cut.statusCode).toBe(400);
    expect(await s3Leftovers(small.aws, small.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
  });

  it('FU-02: a malformed multipart body is 400 BAD_MULTIPART wherever the parser finds it, and leaves nothing', async () => {
    const user = await newUser();
    const form = multipart([{ name: 'file', filename: 'a.png', content: pngBytes(256 * 1024) }]);
    const send = (payload: Buffer, headers: Record<string, string> = form.headers) =>
      small.app.inject({ method: 'POST', url: '/api/files', headers: { ...user.headers, ...headers }, payload });
    const answers = {
      // The body ends inside the file: the file's stream fails while it is on its way to S3.
      midFile: await send(form.payload.subarray(0, 128 * 1024)),
      // The body ends inside the first part's header: the form fails before any file.
      midHeader: await send(form.payload.subarray(0, 40)),
      // A multipart content type without its boundary: the parser cannot start.
      noBoundary: await send(form.payload, { 'content-type': 'multipart/form-data' }),
    };
    const codes = Object.fromEntries(Object.entries(answers).map(([k, r]) => [k, `${r.statusCode} ${r.json().code}`]));
    expect(codes).toEqual({ midFile: '400 BAD_MULTIPART', midHeader: '400 BAD_MULTIPART', noBoundary: '400 BAD_MULTIPART' });
    expect(await s3Leftovers(small.aws, small.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
    expect((await small.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toEqual([]);
  });

  it('R1: S3 unavailable is 503 STORAGE_UNAVAILABLE with Retry-After, and the service stays up', async () => {
    const healthy = createAwsClients(small.config);
    const dead = createAwsClients({ ...small.config, AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: 1 });
    const broken = await buildUploadApp({}, { aws: { ...healthy, s3: dead.s3 } });
    try {
      const user = await newUser();
      const res = await upload(broken.app, user.headers, [{ name: 'file', filename: 'a.png', content: pngBytes(100_000) }]);
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('STORAGE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBeDefined();
      const list = await broken.app.inject({ method: 'GET', url: '/api/files', headers: user.headers });
      expect(list.json().items).toEqual([]);
      // The same user's next upload on a healthy service succeeds: the reservation was released.
      expect((await upload(t.app, user.headers, [{ name: 'file', filename: 'a.png', content: pngBytes(100_000) }])).statusCode).toBe(201);
    } finally {
      await broken.app.close();
      healthy.destroy();
      dead.destroy();
    }
  });
});
