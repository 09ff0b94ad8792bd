import { CopyObjectCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  buildUploadApp,
  closeAuth,
  multipart,
  newUser,
  pngBytes,
  postToS3,
  presign as presignFor,
  s3Leftovers,
  sha256,
  stagedCount,
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

async function stored(headers: Record<string, string>, filename = 'f.txt', content = Buffer.from(`content ${Math.random()}`)) {
  const res = await upload(t.app, headers, [{ name: 'file', filename, content }]);
  expect(res.statusCode).toBe(201);
  return res.json() as { id: string; name: string; size: number; sha256: string };
}

describe('the file API', () => {
  it('lists only the caller\'s files, newest first, with a cursor', async () => {
    const user = await newUser();
    const other = await newUser();
    const a = await stored(user.headers, 'a.txt');
    const b = await stored(user.headers, 'b.txt');
    const c = await stored(user.headers, 'c.txt');
    await stored(other.headers, 'theirs.txt');
    const page1 = await t.app.inject({ method: 'GET', url: '/api/files?limit=2', headers: user.headers });
    expect(page1.statusCode).toBe(200);
    expect(page1.json().items.map((i: { id: string }) => i.id)).toEqual([c.id, b.id]);
    expect(page1.json().nextCursor).toBe(b.id);
    const page2 = await t.app.inject({ method: 'GET', url: `/api/files?limit=2&cursor=${b.id}`, headers: user.headers });
    expect(page2.json()).toEqual({ items: [expect.objectContaining({ id: a.id, name: 'a.txt' })], nextCursor: null });
  });

  it('GET /api/files/{id} answers the metadata', async () => {
    const user = await newUser();
    const f = await stored(user.headers, 'meta.txt', Buffer.from('meta'));
    const res = await t.app.inject({ method: 'GET', url: `/api/files/${f.id}`, headers: user.headers });
    expect(res.json()).toMatchObject({ id: f.id, name: 'meta.txt', size: 4, sha256: sha256(Buffer.from('meta')), sensitive: false });
  });

  it('DL-03: another user\'s file is 404 for get, download and delete, never 403 or bytes', async () => {
    const owner = await newUser();
    const intruder = await newUser();
    const f = await stored(owner.headers);
    for (const [method, url] of [
      ['GET', `/api/files/${f.id}`],
      ['GET', `/api/files/${f.id}/download`],
      ['DELETE', `/api/files/${f.id}`],
    ] as const) {
      const res = await t.app.inject({ method, url, headers: intruder.headers });
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('FILE_NOT_FOUND');
    }
    expect((await t.app.inject({ method: 'GET', url: `/api/files/${f.id}`, headers: owner.headers })).statusCode).toBe(200);
  });

  it.each(['not-a-uuid', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', '00000000-0000-0000-0000-00000000000g'])(
    'DL-04: id %j is refused (400/404)',
    async (id) => {
      const user = await newUser();
      const res = await t.app.inject({ method: 'GET', url: `/api/files/${id}/download`, headers: user.headers });
      expect([400, 404]).toContain(res.statusCode);
      expect(res.json()).toHaveProperty('code');
    },
  );

  it('DL-01, DL-02, DL-05, FU-06: downloads are short-lived presigned URLs, attachment under the RFC 6266-encoded name', async () => {
    const user = await newUser();
    const name = 'naïve résumé (final) 100%.txt';
    const f = await stored(user.headers, name, Buffer.from('cv'));
    const res = await t.app.inject({ method: 'GET', url: `/api/files/${f.id}/download`, headers: user.headers });
    expect(res.statusCode).toBe(302);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const url = new URL(String(res.headers.location));
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(300);
    const got = await fetch(url);
    expect(got.status).toBe(200);
    const disposition = got.headers.get('content-disposition') ?? '';
    // Plain ASCII on the wire; the exact name in filename* (RFC 5987), as browsers read it.
    expect(disposition).toMatch(/^[\x20-\x7e]+$/);
    expect(disposition).toContain(`filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9%20%28final%29%20100%25.txt`);
    expect(await parseDisposition(disposition)).toMatchObject({ type: 'attachment', parameters: { filename: name } });
    expect(got.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  });

  it('DELETE removes the object and the record (204), then 404', async () => {
    const user = await newUser();
    const f = await stored(user.headers);
    const del = await t.app.inject({ method: 'DELETE', url: `/api/files/${f.id}`, headers: user.headers });
    expect(del.statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: `/api/files/${f.id}`, headers: user.headers })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/files/${f.id}`, headers: user.headers })).statusCode).toBe(404);
    expect((await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).objects).toBe(0);
  });

  it('writes an audit line for upload, download and delete', async () => {
    const user = await newUser();
    const f = await stored(user.headers);
    await t.app.inject({ method: 'GET', url: `/api/files/${f.id}/download`, headers: user.headers });
    await t.app.inject({ method: 'DELETE', url: `/api/files/${f.id}`, headers: user.headers });
    const events = t.logs
      .map((l) => l.audit as { event: string; userId?: string; fileId?: string } | undefined)
      .filter((a) => a?.userId === user.userId && a.fileId === f.id)
      .map((a) => a?.event);
    expect(events).toEqual(['upload', 'download', 'delete']);
  });

  it('FU-14: a client that disconnects mid-upload leaves no object and no open multipart upload', async () => {
    const live = await buildUploadApp();
    await live.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = live.app.server.address() as AddressInfo;
    try {
      const user = await newUser();
      const body = multipart([{ name: 'file', filename: 'cut.png', content: pngBytes(12 * 1024 * 1024) }]);
      const failed = live.waitForLog((l) => {
        const audit = l.audit as { event?: string; outcome?: string; userId?: string } | undefined;
        return audit?.event === 'upload' && audit.outcome === 'failure' && audit.userId === user.userId;
      });
      await new Promise<void>((resolve) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/files',
          headers: { ...user.headers, ...body.headers, 'content-length': body.payload.length },
        });
        req.on('error', () => resolve());
        // Send 10 MiB (more than one part, so a multipart upload is open), then vanish.
        req.write(body.payload.subarray(0, 10 * 1024 * 1024), () => {
          req.destroy();
          resolve();
        });
      });
      // The handler writes its failure audit line only after the multipart upload was aborted.
      await failed;
      const leftovers = await s3Leftovers(live.aws, live.config.PRIMARY_BUCKET, user.userId);
      expect(leftovers).toEqual({ objects: 0, multipartUploads: 0 });
      const list = await live.app.inject({ method: 'GET', url: '/api/files', headers: user.headers });
      expect(list.json().items).toEqual([]);
    } finally {
      await live.app.close();
    }
  }, 60_000);
});

describe('direct browser uploads (presign + complete)', () => {
  const presign = (headers: Record<string, string>, body: object) => presignFor(t.app, headers, body);
  const stagedObjects = (userId: string) => stagedCount(t.aws, t.config.PRIMARY_BUCKET, userId);

  it('uploads straight to S3 and becomes a file once verified, with a server-computed SHA-256', async () => {
    const user = await newUser();
    const content = pngBytes(300_000);
    const p = await presign(user.headers, { name: 'direct.png', size: content.length, contentType: 'image/png', sensitive: true });
    expect(p.statusCode).toBe(201);
    const body = p.json();
    expect(body).toEqual({ id: expect.any(String), url: expect.any(String), fields: expect.any(Object), expiresAt: expect.any(String) });
    expect(Date.parse(body.expiresAt) - Date.now()).toBeLessThanOrEqual(300_000);
    // The form writes to a staging key, never to the file's key (which only the service writes).
    expect(body.fields).toMatchObject({ key: `incoming/${user.userId}/${body.id}`, 'Content-Type': 'image/png', 'x-amz-server-side-encryption': 'AES256' });
    expect(body.fields.tagging).toContain('<Value>true</Value>');
    expect(await postToS3(body, content)).toBeLessThan(300);
    // Not listed before it is completed.
    expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toEqual([]);
    const done = await t.app.inject({ method: 'POST', url: `/api/files/${body.id}/complete`, headers: user.headers });
    expect(done.statusCode).toBe(201);
    expect(done.json()).toMatchObject({ id: body.id, name: 'direct.png', size: content.length, sha256: sha256(content), sensitive: true });
    expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toHaveLength(1);
  });

  it('complete answers 404 NOTHING_UPLOADED before the upload, and 404 for an unknown id', async () => {
    const user = await newUser();
    const p = (await presign(user.headers, { name: 'later.txt', size: 5, contentType: 'text/plain', sensitive: false })).json();
    const early = await t.app.inject({ method: 'POST', url: `/api/files/${p.id}/complete`, headers: user.headers });
    expect(early.statusCode).toBe(404);
    expect(early.json().code).toBe('NOTHING_UPLOADED');
    const other = await newUser();
    expect((await t.app.inject({ method: 'POST', url: `/api/files/${p.id}/complete`, headers: other.headers })).statusCode).toBe(404);
  });

  it('FU-05: an object of another type than declared is deleted with its record and answered 415', async () => {
    const user = await newUser();
    const lie = Buffer.from('<html>not a png</html>');
    const p = (await presign(user.headers, { name: 'fake.png', size: lie.length, contentType: 'image/png', sensitive: false })).json();
    // The emulator does not enforce the policy, so the service must check the object itself.
    expect(await postToS3(p, lie)).toBeLessThan(300);
    const res = await t.app.inject({ method: 'POST', url: `/api/files/${p.id}/complete`, headers: user.headers });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ code: 'UNSUPPORTED_FILE_TYPE', message: '"fake.png" is a web page (HTML), not a PNG image' });
    expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
    expect(await stagedObjects(user.userId)).toBe(0);
    expect((await t.app.inject({ method: 'POST', url: `/api/files/${p.id}/complete`, headers: user.headers })).statusCode).toBe(404);
  });

  it.each([
    [{ name: 'tool.exe', size: 10, contentType: 'application/octet-stream' }, 415, 'UNSUPPORTED_FILE_TYPE'],
    [{ name: 'pic.png', size: 10, contentType: 'text/html' }, 415, 'UNSUPPORTED_FILE_TYPE'],
    [{ name: 'huge.png', size: 200 * 1024 * 1024, contentType: 'image/png' }, 413, 'FILE_TOO_LARGE'],
    [{ name: 'a.php;.png', size: 10, contentType: 'image/png' }, 400, 'INVALID_FILE_NAME'],
    [{ name: 'x.png', size: -1, contentType: 'image/png' }, 400, 'VALIDATION_FAILED'],
  ])('presign refuses %j with %i', async (body, status, code) => {
    const user = await newUser();
    const res = await presign(user.headers, { sensitive: false, ...body });
    expect(res.statusCode).toBe(status);
    expect(res.json().code).toBe(code);
  });

  it('the sweep removes expired unfinished uploads (releasing their quota) and objects without a record', async () => {
    const user = await newUser();
    const p = (await presign(user.headers, { name: 'abandoned.txt', size: 4, contentType: 'text/plain', sensitive: false })).json();
    await postToS3(p, Buffer.from('left'));
    const orphanKey = `users/${user.userId}/0190a1b2-0000-7000-8000-000000000000`;
    await t.aws.s3.send(new PutObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: orphanKey, Body: 'orphan' }));
    const later = Date.now() + (t.config.PENDING_UPLOAD_SECONDS + 60) * 1000;
    const result = await t.app.sweeper.sweep({ now: later, userId: user.userId });
    expect(result.expiredPending).toBeGreaterThanOrEqual(1);
    expect(result.orphanObjects).toBeGreaterThanOrEqual(1);
    expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
    expect((await t.app.inject({ method: 'POST', url: `/api/files/${p.id}/complete`, headers: user.headers })).statusCode).toBe(404);
  });
});

describe('what the API does not do', () => {
  it('FU-12: the file API is bearer-only: a session cookie alone is not authentication', async () => {
    const user = await newUser();
    const res = await t.app.inject({ method: 'GET', url: '/api/files', headers: { cookie: `scs_refresh=x; token=${user.token}` } });
    expect(res.statusCode).toBe(401);
  });

  it('FU-08: an archive is stored as sent, never unpacked', async () => {
    const user = await newUser();
    // A zip whose single entry claims to be huge: the service only looks at the first bytes.
    const zip = Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(26, 0xff), Buffer.from('bomb.txt'), Buffer.alloc(2000)]);
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: 'bundle.zip', content: zip }]);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ size: zip.length, contentType: 'application/zip', sha256: sha256(zip) });
  });
});

describe('limits and the sensitive vault', () => {
  it('rate-limits uploads per user (429 RATE_LIMITED with Retry-After); other users are unaffected', async () => {
    const limited = await buildUploadApp({ UPLOADS_PER_MINUTE: '2' });
    try {
      const user = await newUser();
      const other = await newUser();
      const codes = [];
      for (let i = 0; i < 3; i += 1) {
        codes.push((await upload(limited.app, user.headers, [{ name: 'file', filename: `r${i}.txt`, content: Buffer.from('r') }])).statusCode);
      }
      expect(codes).toEqual([201, 201, 429]);
      const res = await upload(limited.app, user.headers, [{ name: 'file', filename: 'r.txt', content: Buffer.from('r') }]);
      expect(res.json().code).toBe('RATE_LIMITED');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect((await upload(limited.app, other.headers, [{ name: 'file', filename: 'o.txt', content: Buffer.from('o') }])).statusCode).toBe(201);
    } finally {
      await limited.app.close();
    }
  });

  it('downloads and deletes a sensitive file after it moved to the KMS-encrypted bucket', async () => {
    const user = await newUser();
    const content = Buffer.from('moved to the vault');
    const res = await upload(t.app, user.headers, [{ name: 'sensitive', value: 'true' }, { name: 'file', filename: 'vault.txt', content }]);
    const { id } = res.json();
    const key = `users/${user.userId}/${id}`;
    // What the sensitive mover does: copy under SSE-KMS, then delete the plaintext source.
    await t.aws.s3.send(
      new CopyObjectCommand({
        Bucket: t.config.SENSITIVE_BUCKET,
        Key: key,
        CopySource: `${t.config.PRIMARY_BUCKET}/${key}`,
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: t.config.SENSITIVE_KMS_KEY_ID,
      }),
    );
    await t.aws.s3.send(new DeleteObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: key }));
    const link = await t.app.inject({ method: 'GET', url: `/api/files/${id}/download?redirect=false`, headers: user.headers });
    expect(link.statusCode).toBe(200);
    const { url } = link.json();
    expect(url).toContain(t.config.SENSITIVE_BUCKET);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(content)).toBe(true);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/files/${id}`, headers: user.headers })).statusCode).toBe(204);
    expect((await s3Leftovers(t.aws, t.config.SENSITIVE_BUCKET, user.userId)).objects).toBe(0);
  });
});
