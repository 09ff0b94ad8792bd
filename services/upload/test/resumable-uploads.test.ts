import { GetObjectTaggingCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { FileRepository, UsageRepository } from '@scs/common/files';
import { partPlan } from '../src/files/resumable-uploads';
import { ObjectStore } from '../src/storage/object-store';
import { buildUploadApp, closeAuth, newUser, pngBytes, sha256, type UploadTestApp } from './helpers';

/**
 * Resumable direct uploads (/api/files/uploads) against the emulator: the parts go to S3 through
 * the presigned part URLs the service signs, as a browser sends them (fetch, PUT, the headers given).
 */
const MiB = 1024 * 1024;
const PART = 8 * MiB;
let t: UploadTestApp;
let files: FileRepository;
let usage: UsageRepository;
beforeAll(async () => {
  t = await buildUploadApp({ QUOTA_BYTES: String(40 * MiB), UPLOAD_SESSION_TTL_SECONDS: '3600' });
  files = new FileRepository(t.aws.dynamo, t.config.FILES_TABLE, console);
  usage = new UsageRepository(t.aws.dynamo, t.config.FILES_TABLE, console);
});
afterAll(async () => {
  await t.app.close();
  await closeAuth();
});

type User = Awaited<ReturnType<typeof newUser>>;
interface Started {
  id: string;
  partSize: number;
  partCount: number;
  expiresAt: string;
}
interface SignedPart {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

const b64sha = (b: Buffer) => createHash('sha256').update(b).digest('base64');
const api = (user: User, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  t.app.inject({ method, url: `/api/files/uploads${url}`, headers: user.headers, ...(payload ? { payload } : {}) });

async function start(user: User, content: Buffer | number, name = 'big.png', extra: object = {}) {
  const size = typeof content === 'number' ? content : content.length;
  return api(user, 'POST', '', { name, size, contentType: 'image/png', sensitive: false, ...extra });
}

/** The bytes of part `n` (1-based) of `content` cut in `partSize` parts. */
const partOf = (content: Buffer, partSize: number, n: number) => content.subarray((n - 1) * partSize, n * partSize);

async function sign(user: User, id: string, parts: { partNumber: number; checksum: string }[]): Promise<SignedPart[]> {
  const res = await api(user, 'POST', `/${id}/parts`, { parts });
  expect(res.statusCode).toBe(200);
  return (res.json() as { parts: SignedPart[] }).parts;
}

/** What a browser does with a signed part: a PUT of the bytes with the headers given; the status S3 answered. */
async function put(part: SignedPart, body: Buffer, headers = part.headers): Promise<{ status: number; etag: string | null }> {
  const res = await fetch(part.url, { method: 'PUT', body, headers });
  await res.arrayBuffer();
  return { status: res.status, etag: res.headers.get('etag') };
}

/** Sends the given parts of `content` (all by default) as a browser does. */
async function sendParts(user: User, id: string, content: Buffer, partSize: number, numbers?: number[]) {
  const count = Math.max(1, Math.ceil(content.length / partSize));
  const wanted = numbers ?? Array.from({ length: count }, (_, i) => i + 1);
  const signed = await sign(user, id, wanted.map((n) => ({ partNumber: n, checksum: b64sha(partOf(content, partSize, n)) })));
  for (const p of signed) expect((await put(p, partOf(content, partSize, p.partNumber))).status).toBe(200);
}

const complete = (user: User, id: string, body?: { checksum: string }) => api(user, 'POST', `/${id}/complete`, body);

/** What S3 and DynamoDB hold of an upload: versions of its object, open multipart uploads, its records, the user's reserved bytes. */
async function leftovers(user: User, id: string) {
  const key = `users/${user.userId}/${id}`;
  const versions = await t.aws.s3.send(new ListObjectVersionsCommand({ Bucket: t.config.PRIMARY_BUCKET, Prefix: key }));
  const open = await t.aws.s3.send(new ListMultipartUploadsCommand({ Bucket: t.config.PRIMARY_BUCKET, Prefix: key }));
  const staged = await t.aws.s3.send(new ListObjectVersionsCommand({ Bucket: t.config.PRIMARY_BUCKET, Prefix: `incoming/${user.userId}/${id}` }));
  const counters = await usage.usage(user.userId);
  return {
    versions: (versions.Versions?.length ?? 0) + (versions.DeleteMarkers?.length ?? 0),
    staged: (staged.Versions?.length ?? 0) + (staged.DeleteMarkers?.length ?? 0),
    multipartUploads: open.Uploads?.length ?? 0,
    record: (await files.get(user.userId, id))?.status ?? null,
    reservedBytes: counters.reservedBytes,
    usedBytes: counters.usedBytes,
  };
}

const nothingLeft = { versions: 0, staged: 0, multipartUploads: 0, record: null, reservedBytes: 0, usedBytes: 0 };

describe('the part plan', () => {
  it('parts of at least 8 MiB, at most 10,000 of them', () => {
    expect(partPlan(1)).toEqual({ partSize: PART, partCount: 1 });
    expect(partPlan(PART)).toEqual({ partSize: PART, partCount: 1 });
    expect(partPlan(PART + 1)).toEqual({ partSize: PART, partCount: 2 });
    const fifty = 50 * 1024 * MiB;
    const plan = partPlan(fifty);
    expect(plan.partCount).toBeLessThanOrEqual(10_000);
    expect(plan.partSize % MiB).toBe(0);
    expect(plan.partSize * plan.partCount).toBeGreaterThanOrEqual(fifty);
  });
});

describe('a resumable upload from start to file', () => {
  it('create, parts, list, describe, complete: an ordinary file with the SHA-256 S3 computed, the quota settled', async () => {
    const user = await newUser();
    const content = pngBytes(PART + 3 * MiB);
    const res = await start(user, content, 'holiday.png');
    expect(res.statusCode).toBe(201);
    const up = res.json() as Started;
    expect(up).toMatchObject({ partSize: PART, partCount: 2 });
    expect(Date.parse(up.expiresAt) - Date.now()).toBeGreaterThan(3500 * 1000);
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: 0, reservedBytes: content.length });

    const listed = await api(user, 'GET', '');
    expect(listed.json()).toEqual({ items: [{ id: up.id, name: 'holiday.png', size: content.length, partSize: PART, partCount: 2, sensitive: false, expiresAt: up.expiresAt }] });
    // Unfinished uploads are not files.
    expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toEqual([]);

    await sendParts(user, up.id, content, PART, [2]);
    const described = (await api(user, 'GET', `/${up.id}`)).json() as { parts: { partNumber: number; size: number; etag: string }[] };
    expect(described.parts.map(({ partNumber, size }) => ({ partNumber, size }))).toEqual([{ partNumber: 2, size: 3 * MiB }]);
    await sendParts(user, up.id, content, PART, [1]);

    const done = await complete(user, up.id);
    expect(done.statusCode).toBe(201);
    expect(done.json()).toMatchObject({ id: up.id, name: 'holiday.png', size: content.length, contentType: 'image/png', sha256: sha256(content), sensitive: false });
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: content.length, reservedBytes: 0 });
    expect((await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items).toHaveLength(1);
    expect((await api(user, 'GET', '')).json()).toEqual({ items: [] });

    // The object carries what a streamed upload's does, and the downloaded bytes are the file's.
    const Key = `users/${user.userId}/${up.id}`;
    const head = await t.aws.s3.send(new HeadObjectCommand({ Bucket: t.config.PRIMARY_BUCKET, Key }));
    expect(head).toMatchObject({ ContentLength: content.length, ServerSideEncryption: 'AES256', Metadata: { owner: user.userId, 'file-id': up.id } });
    const tags = await t.aws.s3.send(new GetObjectTaggingCommand({ Bucket: t.config.PRIMARY_BUCKET, Key }));
    expect(Object.fromEntries((tags.TagSet ?? []).map((x) => [x.Key, x.Value]))).toEqual({ sensitive: 'false', sha256: sha256(content) });
    const link = await t.app.inject({ method: 'GET', url: `/api/files/${up.id}/download?redirect=false`, headers: user.headers });
    expect(sha256(Buffer.from(await (await fetch(link.json().url)).arrayBuffer()))).toBe(sha256(content));
    // The server-side copy that computed the SHA-256 is gone.
    expect(await leftovers(user, up.id)).toMatchObject({ versions: 1, staged: 0, multipartUploads: 0, record: 'active' });
  });

  it('a repeat of complete is harmless: 409 ALREADY_COMPLETED, one file, counted once', async () => {
    const user = await newUser();
    const content = pngBytes(200_000);
    const up = (await start(user, content)).json() as Started;
    await sendParts(user, up.id, content, PART);
    expect((await complete(user, up.id)).statusCode).toBe(201);
    const again = await complete(user, up.id);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('ALREADY_COMPLETED');
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: content.length, reservedBytes: 0 });
    expect((await usage.fileCounts(user.userId)).committedFiles).toBe(1);
  });

  it('two completes at once over real connections: exactly one record, counted once', async () => {
    const user = await newUser();
    const content = pngBytes(300_000);
    const up = (await start(user, content)).json() as Started;
    await sendParts(user, up.id, content, PART);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const answers = await Promise.all(
      [1, 2].map(async () => {
        const res = await fetch(`${base}/api/files/uploads/${up.id}/complete`, { method: 'POST', headers: user.headers });
        return { status: res.status, body: (await res.json()) as { code?: string; sha256?: string } };
      }),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    const other = answers.find((a) => a.status !== 201);
    expect(other?.status).toBe(409);
    expect(['ALREADY_COMPLETED', 'UPLOAD_IN_PROGRESS']).toContain(other?.body.code);
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: content.length, reservedBytes: 0 });
    expect((await usage.fileCounts(user.userId)).committedFiles).toBe(1);
    expect(await leftovers(user, up.id)).toMatchObject({ versions: 1, multipartUploads: 0, record: 'active' });
  });
});

describe('an unfinished upload is a reservation like any pending direct upload', () => {
  it("the usage reconciliation (backup-sync's) counts it as reserved, its bytes and one file, and changes nothing", async () => {
    const user = await newUser();
    const up = (await start(user, 3 * MiB)).json() as Started;
    const result = await usage.reconcile(user.userId, Math.floor(Date.now() / 1000));
    expect(result.corrected).toBe(false);
    expect(result.after).toEqual({ usedBytes: 0, reservedBytes: 3 * MiB, usedFiles: 0, reservedFiles: 1 });
    expect((await api(user, 'DELETE', `/${up.id}`)).statusCode).toBe(204);
    expect((await usage.reconcile(user.userId, Math.floor(Date.now() / 1000))).after).toEqual({ usedBytes: 0, reservedBytes: 0, usedFiles: 0, reservedFiles: 0 });
  });

  it('a sensitive upload is created with the sensitive tag (the mover reads it on the creation event)', async () => {
    const user = await newUser();
    const content = pngBytes(5000);
    const up = (await start(user, content, 'secret.png', { sensitive: true })).json() as Started;
    await sendParts(user, up.id, content, PART);
    const done = await complete(user, up.id);
    expect(done.statusCode).toBe(201);
    expect(done.json()).toMatchObject({ sensitive: true, sha256: sha256(content) });
    const tags = await t.aws.s3.send(new GetObjectTaggingCommand({ Bucket: t.config.PRIMARY_BUCKET, Key: `users/${user.userId}/${up.id}` })).catch(() => undefined);
    // The mover may have moved it to the vault already; while it is in the primary bucket it is tagged.
    if (tags) expect(Object.fromEntries((tags.TagSet ?? []).map((x) => [x.Key, x.Value]))).toMatchObject({ sensitive: 'true' });
  });
});

describe('refusals at create', () => {
  it('a name of a refused type: 415, nothing started', async () => {
    const user = await newUser();
    const res = await api(user, 'POST', '', { name: 'run.exe', size: 100, contentType: 'application/octet-stream', sensitive: false });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('UNSUPPORTED_FILE_TYPE');
    expect((await t.aws.s3.send(new ListMultipartUploadsCommand({ Bucket: t.config.PRIMARY_BUCKET, Prefix: `users/${user.userId}/` }))).Uploads ?? []).toEqual([]);
  });

  it('above MAX_DIRECT_UPLOAD_BYTES: 413 FILE_TOO_LARGE; size 0 or a malformed checksum: 400 VALIDATION_FAILED', async () => {
    const user = await newUser();
    const big = await start(user, t.config.MAX_DIRECT_UPLOAD_BYTES + 1);
    expect(big.statusCode).toBe(413);
    expect(big.json().code).toBe('FILE_TOO_LARGE');
    for (const body of [{ size: 0 }, { size: 10, checksum: 'abc' }]) {
      const res = await api(user, 'POST', '', { name: 'a.png', contentType: 'image/png', sensitive: false, ...body });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('VALIDATION_FAILED');
    }
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: 0, reservedBytes: 0 });
  });

  it('FU-03: two creates at once over real connections that fit the quota only one at a time: one 201, one 413, one multipart upload', async () => {
    const user = await newUser();
    await t.app.listen({ port: 0, host: '127.0.0.1' }).catch(() => undefined);
    const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const size = 25 * MiB; // the quota is 40 MiB
    const answers = await Promise.all(
      [1, 2].map(async () => {
        const res = await fetch(`${base}/api/files/uploads`, {
          method: 'POST',
          headers: { ...user.headers, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'race.png', size, contentType: 'image/png', sensitive: false }),
        });
        return { status: res.status, body: (await res.json()) as { code?: string } };
      }),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 413]);
    expect(answers.find((a) => a.status === 413)?.body.code).toBe('QUOTA_EXCEEDED');
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: 0, reservedBytes: size });
    // The refused create aborted the multipart upload it had started.
    const open = await t.aws.s3.send(new ListMultipartUploadsCommand({ Bucket: t.config.PRIMARY_BUCKET, Prefix: `users/${user.userId}/` }));
    expect(open.Uploads ?? []).toHaveLength(1);
  });
});

describe('presigned parts', () => {
  it('INVALID_PART for a number out of range or a malformed checksum; 404 for an unknown id', async () => {
    const user = await newUser();
    const up = (await start(user, PART + 1)).json() as Started;
    const good = b64sha(Buffer.from('x'));
    for (const parts of [[{ partNumber: 0, checksum: good }], [{ partNumber: 3, checksum: good }], [{ partNumber: 1, checksum: 'not-base64' }], [{ partNumber: 1, checksum: Buffer.alloc(20).toString('base64') }]]) {
      const res = await api(user, 'POST', `/${up.id}/parts`, { parts });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('INVALID_PART');
    }
    const unknown = await api(user, 'POST', `/0190a000-0000-7000-8000-000000000000/parts`, { parts: [{ partNumber: 1, checksum: good }] });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('UPLOAD_NOT_FOUND');
  });

  it('the URL is signed for the part checksum: x-amz-checksum-sha256 is a signed header, sent as given', async () => {
    const user = await newUser();
    const up = (await start(user, 1000)).json() as Started;
    const checksum = b64sha(pngBytes(1000));
    const [part] = await sign(user, up.id, [{ partNumber: 1, checksum }]);
    const url = new URL((part as SignedPart).url);
    expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).toContain('x-amz-checksum-sha256');
    // Not hoisted into the query: the browser must send it, and a request without it fails the signature on S3.
    expect(url.searchParams.has('x-amz-checksum-sha256')).toBe(false);
    expect((part as SignedPart).headers).toEqual({ 'x-amz-checksum-sha256': checksum });
    expect(Date.parse((part as SignedPart).expiresAt) - Date.now()).toBeLessThanOrEqual(t.config.PRESIGN_EXPIRES_SECONDS * 1000);
  });

  it('FU-15: a tampered part is refused by S3 (its SHA-256 is not the one signed for); the good part is accepted after', async () => {
    const user = await newUser();
    const content = pngBytes(100_000);
    const up = (await start(user, content)).json() as Started;
    const [part] = await sign(user, up.id, [{ partNumber: 1, checksum: b64sha(content) }]);
    const tampered = Buffer.from(content);
    tampered[5000] = (tampered[5000] ?? 0) ^ 0xff;
    expect((await put(part as SignedPart, tampered)).status).toBe(400);
    expect((await api(user, 'GET', `/${up.id}`)).json().parts).toEqual([]);
    expect((await put(part as SignedPart, content)).status).toBe(200);
    expect((await complete(user, up.id)).statusCode).toBe(201);
  });

  it('a part whose URL was refused gets a fresh URL any number of times, and the upload completes', async () => {
    const user = await newUser();
    const content = pngBytes(50_000);
    const up = (await start(user, content)).json() as Started;
    const urls = new Set<string>();
    for (let i = 0; i < 3; i += 1) {
      const [again] = await sign(user, up.id, [{ partNumber: 1, checksum: b64sha(content) }]);
      urls.add((again as SignedPart).url);
      if (i < 2) continue;
      expect((await put(again as SignedPart, content)).status).toBe(200);
    }
    expect(urls.size).toBeGreaterThanOrEqual(1);
    expect((await complete(user, up.id)).statusCode).toBe(201);
  });
});

describe('complete refuses what is not whole', () => {
  it('parts missing: 400 UPLOAD_INCOMPLETE naming them; the upload stays, and completes once they are sent', async () => {
    const user = await newUser();
    const content = pngBytes(2 * PART + 100);
    const up = (await start(user, content)).json() as Started;
    expect(up.partCount).toBe(3);
    await sendParts(user, up.id, content, PART, [1]);
    const res = await complete(user, up.id);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'UPLOAD_INCOMPLETE' });
    expect(res.json().message).toMatch(/missing parts 2, 3/);
    expect((await api(user, 'GET', `/${up.id}`)).json().parts).toHaveLength(1);
    await sendParts(user, up.id, content, PART, [2, 3]);
    expect((await complete(user, up.id)).statusCode).toBe(201);
  });

  it('a part of the wrong size: 400 UPLOAD_INCOMPLETE; sent again at its size, the upload completes', async () => {
    const user = await newUser();
    const content = pngBytes(PART + 100);
    const up = (await start(user, content)).json() as Started;
    await sendParts(user, up.id, content, PART, [2]);
    // Part 1 sent short (its own checksum, so S3 accepts the bytes: the size is the service's check).
    const short = content.subarray(0, 6 * MiB);
    const [p1] = await sign(user, up.id, [{ partNumber: 1, checksum: b64sha(short) }]);
    expect((await put(p1 as SignedPart, short)).status).toBe(200);
    const res = await complete(user, up.id);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('UPLOAD_INCOMPLETE');
    expect(res.json().message).toMatch(/part 1 has 6291456 bytes, not 8388608/);
    await sendParts(user, up.id, content, PART, [1]);
    expect((await complete(user, up.id)).statusCode).toBe(201);
  });

  it('415 at complete: the object is deleted (every version) and the reservation released', async () => {
    const user = await newUser();
    const content = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(70_000, 0x41)]);
    const up = (await start(user, content, 'fake.png')).json() as Started;
    await sendParts(user, up.id, content, PART);
    const res = await complete(user, up.id);
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('UNSUPPORTED_FILE_TYPE');
    expect(await leftovers(user, up.id)).toEqual(nothingLeft);
    expect((await usage.fileCounts(user.userId)).committedFiles).toBe(0);
    expect((await complete(user, up.id)).statusCode).toBe(404);
  });

  it('a declared SHA-256 the bytes do not have: 400 UPLOAD_MISMATCH, nothing left', async () => {
    const user = await newUser();
    const content = pngBytes(70_000);
    const up = (await start(user, content, 'big.png', { checksum: sha256(pngBytes(10)) })).json() as Started;
    await sendParts(user, up.id, content, PART);
    const res = await complete(user, up.id);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('UPLOAD_MISMATCH');
    expect(await leftovers(user, up.id)).toEqual(nothingLeft);
  });
});

describe("the file's SHA-256 declared at complete", () => {
  it('the right one (hex or base64): 201 with it; a wrong one: 400 UPLOAD_MISMATCH, nothing left', async () => {
    const user = await newUser();
    const content = pngBytes(PART + 5000);
    const good = (await start(user, content)).json() as Started;
    await sendParts(user, good.id, content, PART);
    const ok = await complete(user, good.id, { checksum: b64sha(content) });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().sha256).toBe(sha256(content));

    const bad = (await start(user, content)).json() as Started;
    await sendParts(user, bad.id, content, PART);
    const refused = await complete(user, bad.id, { checksum: sha256(pngBytes(10)) });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().code).toBe('UPLOAD_MISMATCH');
    // Only the first file counts.
    expect(await leftovers(user, bad.id)).toEqual({ ...nothingLeft, usedBytes: content.length });
  });

  it('one that differs from the one declared at create, or is malformed: 400 VALIDATION_FAILED, and the upload completes after', async () => {
    const user = await newUser();
    const content = pngBytes(70_000);
    const up = (await start(user, content, 'big.png', { checksum: sha256(content) })).json() as Started;
    await sendParts(user, up.id, content, PART);
    for (const checksum of [sha256(pngBytes(10)), 'abc']) {
      const res = await complete(user, up.id, { checksum });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('VALIDATION_FAILED');
    }
    expect((await leftovers(user, up.id)).record).toBe('pending');
    const res = await complete(user, up.id, { checksum: sha256(content) });
    expect(res.statusCode).toBe(201);
    expect(res.json().sha256).toBe(sha256(content));
  });
});

describe('above COPY_IN_PARTS_ABOVE_BYTES (5 GiB; lowered here) S3 cannot hash the file: the declared SHA-256 is recorded', () => {
  let big: UploadTestApp;
  const LIMIT = 8 * MiB;
  const call = (user: User, method: 'POST', url: string, payload?: object) =>
    big.app.inject({ method, url: `/api/files/uploads${url}`, headers: user.headers, ...(payload ? { payload } : {}) });
  beforeAll(async () => {
    big = await buildUploadApp({ QUOTA_BYTES: String(40 * MiB), COPY_IN_PARTS_ABOVE_BYTES: String(LIMIT) });
  });
  afterAll(async () => {
    await big.app.close();
  });

  it('completed without one: 400 VALIDATION_FAILED and the upload stays; with it: 201, the file has that SHA-256', async () => {
    const user = await newUser();
    const content = pngBytes(LIMIT + 3 * MiB);
    const up = (await call(user, 'POST', '', { name: 'big.png', size: content.length, contentType: 'image/png', sensitive: false })).json() as Started;
    await sendParts(user, up.id, content, up.partSize);
    const without = await call(user, 'POST', `/${up.id}/complete`);
    expect(without.statusCode).toBe(400);
    expect(without.json()).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('SHA-256') });
    expect(await leftovers(user, up.id)).toMatchObject({ record: 'pending', multipartUploads: 1, reservedBytes: content.length });

    const res = await call(user, 'POST', `/${up.id}/complete`, { checksum: sha256(content) });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ size: content.length, sha256: sha256(content) });
    const tags = await big.aws.s3.send(new GetObjectTaggingCommand({ Bucket: big.config.PRIMARY_BUCKET, Key: `users/${user.userId}/${up.id}` }));
    expect(tags.TagSet).toEqual(expect.arrayContaining([{ Key: 'sha256', Value: sha256(content) }]));
  });

  it('declared at create: completes without a body', async () => {
    const user = await newUser();
    const content = pngBytes(LIMIT + 1);
    const started = await call(user, 'POST', '', { name: 'big.png', size: content.length, contentType: 'image/png', sensitive: false, checksum: b64sha(content) });
    expect(started.statusCode).toBe(201);
    const up = started.json() as Started;
    await sendParts(user, up.id, content, up.partSize);
    const res = await call(user, 'POST', `/${up.id}/complete`);
    expect(res.statusCode).toBe(201);
    expect(res.json().sha256).toBe(sha256(content));
  });
});

describe('cancel and expiry leave nothing behind', () => {
  it('DELETE aborts at once and releases the reservation; a repeat is harmless (404, nothing changes)', async () => {
    const user = await newUser();
    const content = pngBytes(PART + 10);
    const up = (await start(user, content)).json() as Started;
    await sendParts(user, up.id, content, PART, [1]);
    const res = await api(user, 'DELETE', `/${up.id}`);
    expect(res.statusCode).toBe(204);
    expect(await leftovers(user, up.id)).toEqual(nothingLeft);
    expect((await usage.fileCounts(user.userId)).committedFiles).toBe(0);
    const again = await api(user, 'DELETE', `/${up.id}`);
    expect(again.statusCode).toBe(404);
    expect(await leftovers(user, up.id)).toEqual(nothingLeft);
    expect((await api(user, 'POST', `/${up.id}/parts`, { parts: [{ partNumber: 1, checksum: b64sha(content) }] })).statusCode).toBe(404);
  });

  it('DELETE of a completed upload answers 404 (no unfinished upload by that id), again and again: the file stays, counted once', async () => {
    const user = await newUser();
    const content = pngBytes(1000);
    const up = (await start(user, content)).json() as Started;
    await sendParts(user, up.id, content, PART);
    expect((await complete(user, up.id)).statusCode).toBe(201);
    for (let i = 0; i < 2; i += 1) {
      const res = await api(user, 'DELETE', `/${up.id}`);
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('UPLOAD_NOT_FOUND');
    }
    expect((await t.app.inject({ method: 'GET', url: `/api/files/${up.id}`, headers: user.headers })).statusCode).toBe(200);
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: content.length, reservedBytes: 0 });
    expect(await leftovers(user, up.id)).toMatchObject({ versions: 1, multipartUploads: 0, record: 'active' });
  });

  describe('a cancel wins over a /complete under way', () => {
    it('DELETE while a /complete checks the object: 204 at once; the /complete answers 404 and nothing of the upload stays', async () => {
      const user = await newUser();
      const content = pngBytes(PART + 1000);
      const up = (await start(user, content)).json() as Started;
      await sendParts(user, up.id, content, PART);
      // Hold the /complete after it completed the multipart upload, when it reads the object's first bytes.
      const original = ObjectStore.prototype.readRange;
      let open!: () => void;
      let arrived!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const reached = new Promise<void>((resolve) => (arrived = resolve));
      const spy = jest.spyOn(ObjectStore.prototype, 'readRange').mockImplementation(async function (this: ObjectStore, ...args: Parameters<ObjectStore['readRange']>) {
        if (args[0].endsWith(up.id)) {
          arrived();
          await gate;
        }
        return original.apply(this, args);
      });
      try {
        const completing = complete(user, up.id);
        await reached;
        expect(await leftovers(user, up.id)).toMatchObject({ versions: 1, record: 'verifying' });
        const cancel = await api(user, 'DELETE', `/${up.id}`);
        expect(cancel.statusCode).toBe(204);
        expect(await leftovers(user, up.id)).toEqual(nothingLeft);
        open();
        const res = await completing;
        expect(res.statusCode).toBe(404);
        expect(res.json().code).toBe('UPLOAD_NOT_FOUND');
      } finally {
        spy.mockRestore();
      }
      expect(await leftovers(user, up.id)).toEqual(nothingLeft);
      expect((await usage.fileCounts(user.userId)).committedFiles).toBe(0);
    });

    it('a /complete and a DELETE at once over real connections, for 8 uploads: each ends as a file or as nothing, counted exactly', async () => {
      const user = await newUser();
      await t.app.listen({ port: 0, host: '127.0.0.1' }).catch(() => undefined);
      const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/api/files/uploads`;
      const content = pngBytes(70_000);
      const ids: string[] = [];
      for (let i = 0; i < 8; i += 1) {
        const up = (await start(user, content)).json() as Started;
        await sendParts(user, up.id, content, PART);
        ids.push(up.id);
      }
      const outcomes = await Promise.all(
        ids.map(async (id) => {
          const [done, cancelled] = await Promise.all([
            fetch(`${base}/${id}/complete`, { method: 'POST', headers: user.headers }),
            fetch(`${base}/${id}`, { method: 'DELETE', headers: user.headers }),
          ]);
          return { id, complete: done.status, cancel: cancelled.status };
        }),
      );
      let stored = 0;
      for (const o of outcomes) {
        const left = await leftovers(user, o.id);
        if (o.complete === 201) {
          // The file was made before the cancel came: the cancel found no unfinished upload.
          expect(o.cancel).toBe(404);
          expect(left).toMatchObject({ versions: 1, multipartUploads: 0, record: 'active' });
          stored += 1;
        } else {
          // The cancel won: the /complete found the upload gone (404) or held by the cancel (409).
          expect(o.cancel).toBe(204);
          expect([404, 409]).toContain(o.complete);
          expect(left).toMatchObject({ versions: 0, staged: 0, multipartUploads: 0, record: null });
        }
      }
      expect(await usage.usage(user.userId)).toEqual({ usedBytes: stored * content.length, reservedBytes: 0 });
      expect((await usage.fileCounts(user.userId)).committedFiles).toBe(stored);
    });
  });

  it('FU-14: the sweep aborts an upload past UPLOAD_SESSION_TTL_SECONDS and releases its reservation (fake time); a live one stays', async () => {
    const user = await newUser();
    const content = pngBytes(PART + 10);
    const old = (await start(user, content)).json() as Started;
    await sendParts(user, old.id, content, PART, [1]);
    const ttl = t.config.UPLOAD_SESSION_TTL_SECONDS;
    // Just before its time: kept.
    await t.app.sweeper.sweep({ now: Date.now() + (ttl - 60) * 1000, userId: user.userId });
    expect((await leftovers(user, old.id)).record).toBe('pending');
    await t.app.sweeper.sweep({ now: Date.now() + (ttl + 60) * 1000, userId: user.userId });
    expect(await leftovers(user, old.id)).toEqual(nothingLeft);
    expect((await usage.fileCounts(user.userId)).committedFiles).toBe(0);
    expect((await api(user, 'GET', '')).json()).toEqual({ items: [] });
    expect((await complete(user, old.id)).statusCode).toBe(404);
  });

  it('an upload past its time is not completed even before the sweep came (404), and is not listed', async () => {
    const user = await newUser();
    const content = pngBytes(1000);
    const up = (await start(user, content)).json() as Started;
    await sendParts(user, up.id, content, PART);
    const record = await files.get(user.userId, up.id);
    // Its time is up: the record's expiry moved into the past as the clock would.
    await t.aws.dynamo.send(
      new (await import('@aws-sdk/lib-dynamodb')).UpdateCommand({
        TableName: t.config.FILES_TABLE,
        Key: { userId: user.userId, fileId: `#pending#${up.id}` },
        UpdateExpression: 'SET expiresAt = :past',
        ExpressionAttributeValues: { ':past': Math.floor(Date.now() / 1000) - 1 },
      }),
    );
    expect(record?.status).toBe('pending');
    expect((await complete(user, up.id)).statusCode).toBe(404);
    expect((await api(user, 'GET', '')).json()).toEqual({ items: [] });
    await t.app.sweeper.sweep({ userId: user.userId });
    expect(await leftovers(user, up.id)).toEqual(nothingLeft);
  });
});

describe("another user's upload answers 404 everywhere", () => {
  it('describe, parts, complete, cancel: 404 UPLOAD_NOT_FOUND, and the upload is untouched', async () => {
    const owner = await newUser();
    const other = await newUser();
    const content = pngBytes(1000);
    const up = (await start(owner, content)).json() as Started;
    await sendParts(owner, up.id, content, PART);
    const answers = [
      await api(other, 'GET', `/${up.id}`),
      await api(other, 'POST', `/${up.id}/parts`, { parts: [{ partNumber: 1, checksum: b64sha(content) }] }),
      await api(other, 'POST', `/${up.id}/complete`),
      await api(other, 'DELETE', `/${up.id}`),
    ];
    for (const a of answers) {
      expect(a.statusCode).toBe(404);
      expect(a.json().code).toBe('UPLOAD_NOT_FOUND');
    }
    expect((await api(other, 'GET', '')).json()).toEqual({ items: [] });
    expect((await complete(owner, up.id)).statusCode).toBe(201);
  });
});
