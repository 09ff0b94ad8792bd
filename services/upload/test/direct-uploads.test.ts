import { GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { FileRepository, UsageRepository } from '@scs/common/files';
import { COMPLETE_LEASE_SECONDS } from '../src/files/direct-uploads';
import {
  buildUploadApp,
  closeAuth,
  newUser,
  parseDisposition,
  pngBytes,
  postToS3,
  presign,
  s3Leftovers,
  sha256,
  stagedCount,
  type UploadTestApp,
} from './helpers';

/**
 * Direct browser uploads at the service (the same inputs run through the real gateway in
 * tests/e2e/test/files.e2e.test.ts). The emulator enforces none of a presigned POST's conditions,
 * which is what lets these tests send what a dishonest client would.
 */
const MiB = 1024 * 1024;
let t: UploadTestApp;
let files: FileRepository;
let usage: UsageRepository;
beforeAll(async () => {
  t = await buildUploadApp({ QUOTA_BYTES: String(2 * MiB) });
  files = new FileRepository(t.aws.dynamo, t.config.FILES_TABLE, console);
  usage = new UsageRepository(t.aws.dynamo, t.config.FILES_TABLE, console);
});
afterAll(async () => {
  await t.app.close();
  await closeAuth();
});

const complete = (headers: Record<string, string>, id: string) => t.app.inject({ method: 'POST', url: `/api/files/${id}/complete`, headers });

async function uploaded(content: Buffer, name = 'photo.png', contentType = 'image/png', changed: Record<string, string> = {}) {
  const user = await newUser();
  const res = await presign(t.app, user.headers, { name, size: content.length, contentType, sensitive: false });
  expect(res.statusCode).toBe(201);
  const p = res.json() as { id: string; url: string; fields: Record<string, string> };
  expect(await postToS3(p, content, changed)).toBeLessThan(300);
  return { user, p };
}

describe('a verified file is no longer writable through its upload form', () => {
  it('FU-05/FU-15: posting the same form again after /complete does not change the file: the download still has the verified bytes', async () => {
    const verified = pngBytes(200_000);
    const { user, p } = await uploaded(verified);
    expect((await complete(user.headers, p.id)).statusCode).toBe(201);

    const other = pngBytes(200_000);
    expect(await postToS3(p, other)).toBeLessThan(300);
    const link = await t.app.inject({ method: 'GET', url: `/api/files/${p.id}/download?redirect=false`, headers: user.headers });
    const bytes = Buffer.from(await (await fetch(link.json().url)).arrayBuffer());
    expect(sha256(bytes)).toBe(sha256(verified));
    const again = await complete(user.headers, p.id);
    expect(again.json()).toMatchObject({ sha256: sha256(verified) });
  });

  it('the sweep removes a form posted again after completion (the staging key is never a file)', async () => {
    const { user, p } = await uploaded(pngBytes(1000));
    expect((await complete(user.headers, p.id)).statusCode).toBe(201);
    expect(await stagedCount(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toBe(0);
    expect(await postToS3(p, pngBytes(1000))).toBeLessThan(300);
    await t.app.sweeper.sweep({ now: Date.now() + (t.config.PENDING_UPLOAD_SECONDS + 60) * 1000, userId: user.userId });
    expect(await stagedCount(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toBe(0);
    expect((await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).objects).toBe(1);
  });
});

describe('FU-03: exactly one /complete acts', () => {
  it('six parallel /complete of a good upload: one file, its bytes counted once', async () => {
    const content = pngBytes(300_000);
    const { user, p } = await uploaded(content);
    const answers = await Promise.all(Array.from({ length: 6 }, () => complete(user.headers, p.id)));
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 201).length).toBeGreaterThanOrEqual(1);
    for (const a of answers) {
      if (a.statusCode === 201) expect(a.json()).toMatchObject({ id: p.id, sha256: sha256(content) });
      else expect(a.json()).toMatchObject({ statusCode: 409, code: 'UPLOAD_IN_PROGRESS' });
    }
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: content.length, reservedBytes: 0 });
    expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toHaveLength(1);
  });

  it('six parallel /complete of a bad upload: refused once, the reservation released once', async () => {
    const lie = Buffer.concat([Buffer.from('<html>'), Buffer.alloc(600_000, 0x20)]);
    const { user, p } = await uploaded(lie);
    const answers = await Promise.all(Array.from({ length: 6 }, () => complete(user.headers, p.id)));
    const codes = answers.map((a) => a.statusCode).sort();
    expect(codes.filter((c) => c === 415)).toHaveLength(1);
    for (const c of codes) expect([404, 409, 415]).toContain(c);
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: 0, reservedBytes: 0 });
    // Released once, not six times: the quota (2 MiB) still holds.
    const big = (await presign(t.app, user.headers, { name: 'a.png', size: 1536 * 1024, contentType: 'image/png', sensitive: false })).statusCode;
    const more = (await presign(t.app, user.headers, { name: 'b.png', size: 1024 * 1024, contentType: 'image/png', sensitive: false })).json();
    expect(big).toBe(201);
    expect(more.code).toBe('QUOTA_EXCEEDED');
  });

  it('a /complete whose request died is taken over once its claim ran out', async () => {
    const content = pngBytes(1000);
    const { user, p } = await uploaded(content);
    // A request claims the upload and never finishes.
    expect(await files.claim(user.userId, p.id, COMPLETE_LEASE_SECONDS)).toEqual(expect.any(String));
    expect((await complete(user.headers, p.id)).json().code).toBe('UPLOAD_IN_PROGRESS');
    const later = Math.floor(Date.now() / 1000) + COMPLETE_LEASE_SECONDS + 1;
    expect(await files.claim(user.userId, p.id, COMPLETE_LEASE_SECONDS, later)).toEqual(expect.any(String));
  });
});

describe('/complete checks what S3 stored against what was issued', () => {
  it.each([
    ['a different Content-Type', { 'Content-Type': 'text/html' }, 'Content-Type is "text/html", not "image/png"'],
    ['a different Content-Disposition', { 'Content-Disposition': 'inline' }, 'Content-Disposition is "inline"'],
    ['another owner', { 'x-amz-meta-owner': 'someone-else' }, 'metadata owner is "someone-else"'],
  ])('FU-05/FU-06: an object stored with %s is discarded (400 UPLOAD_MISMATCH) and its reservation released', async (_label, changed, problem) => {
    const { user, p } = await uploaded(pngBytes(1000), 'photo.png', 'image/png', changed);
    const res = await complete(user.headers, p.id);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'UPLOAD_MISMATCH', message: expect.stringContaining(problem) });
    expect(await stagedCount(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toBe(0);
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: 0, reservedBytes: 0 });
    expect((await complete(user.headers, p.id)).statusCode).toBe(404);
  });

  it('an object of another size than declared is discarded (400 UPLOAD_MISMATCH)', async () => {
    const user = await newUser();
    const p = (await presign(t.app, user.headers, { name: 'photo.png', size: 1000, contentType: 'image/png', sensitive: false })).json();
    expect(await postToS3(p, pngBytes(1200))).toBeLessThan(300);
    const res = await complete(user.headers, p.id);
    expect(res.json()).toMatchObject({ code: 'UPLOAD_MISMATCH', message: expect.stringContaining('the size is 1200, not 1000') });
  });

  it('the file object carries exactly what was issued: type, disposition, encryption, metadata, tags', async () => {
    const content = Buffer.from('\ufeffName;City\r\nJosé;Zürich\r\n');
    const user = await newUser();
    const p = (await presign(t.app, user.headers, { name: 'people; 2026.csv', size: content.length, contentType: 'text/csv', sensitive: true })).json();
    expect(await postToS3(p, content)).toBeLessThan(300);
    const done = await complete(user.headers, p.id);
    expect(done.json()).toMatchObject({ name: 'people; 2026.csv', contentType: 'text/csv; charset=utf-8', sha256: sha256(content), sensitive: true });
    const Key = `users/${user.userId}/${p.id}`;
    const head = await t.aws.s3.send(new HeadObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key }));
    expect(head).toMatchObject({ ContentType: 'text/csv; charset=utf-8', ServerSideEncryption: 'AES256', Metadata: { owner: user.userId, 'file-id': p.id } });
    expect((await parseDisposition(head.ContentDisposition ?? '')).parameters.filename).toBe('people; 2026.csv');
    const tags = await t.aws.s3.send(new GetObjectTaggingCommand({ Bucket: t.config.PRIMARY_BUCKET, Key }));
    expect(tags.TagSet).toEqual(expect.arrayContaining([{ Key: 'sensitive', Value: 'true' }, { Key: 'sha256', Value: sha256(content) }]));
    expect(await stagedCount(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toBe(0);
  });

  it('nothing uploaded yet is 404 NOTHING_UPLOADED, and the upload can still be completed afterwards', async () => {
    const user = await newUser();
    const content = pngBytes(500);
    const p = (await presign(t.app, user.headers, { name: 'later.png', size: content.length, contentType: 'image/png', sensitive: false })).json();
    expect((await complete(user.headers, p.id)).json().code).toBe('NOTHING_UPLOADED');
    expect(await postToS3(p, content)).toBeLessThan(300);
    expect((await complete(user.headers, p.id)).statusCode).toBe(201);
  });
});
