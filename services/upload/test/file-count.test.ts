import { FileRepository, UsageRepository } from '@scs/common/files';
import { buildUploadApp, closeAuth, newUser, pngBytes, postToS3, presign, upload, type UploadTestApp } from './helpers';

/**
 * What a signed-in user's floods cost (FU-03): every upload under way and every pending direct
 * upload holds one file of QUOTA_FILES, even at zero bytes, so sessions that cost nothing cannot
 * pile up; pending uploads are stored where the listing never reads them; the listing has a rate
 * limit of its own. (Parallel requests over real connections: tests/e2e/test/upload-limits.e2e.test.ts.)
 */
const QUOTA_FILES = 3;
let t: UploadTestApp;
let files: FileRepository;
let usage: UsageRepository;
beforeAll(async () => {
  t = await buildUploadApp({ QUOTA_FILES: String(QUOTA_FILES), LISTS_PER_MINUTE: '100000' });
  files = new FileRepository(t.aws.dynamo, t.config.FILES_TABLE, console);
  usage = new UsageRepository(t.aws.dynamo, t.config.FILES_TABLE, console);
});
afterAll(async () => {
  await t.app.close();
  await closeAuth();
});

const note = (headers: Record<string, string>, name = 'note.txt') => upload(t.app, headers, [{ name: 'file', filename: name, content: Buffer.from('a note') }]);
const emptyPresign = (headers: Record<string, string>) => presign(t.app, headers, { name: 'empty.txt', size: 0, contentType: 'text/plain', sensitive: false });
const list = (headers: Record<string, string>, query = '') => t.app.inject({ method: 'GET', url: `/api/files${query}`, headers });

describe('FU-03: the file count (QUOTA_FILES)', () => {
  it('FU-03: zero-byte direct uploads each hold a file: the one past QUOTA_FILES is 413 FILE_COUNT_EXCEEDED, presigned or streamed', async () => {
    const user = await newUser();
    for (let i = 0; i < QUOTA_FILES; i++) expect((await emptyPresign(user.headers)).statusCode).toBe(201);
    expect(await usage.fileCounts(user.userId)).toEqual({ usedFiles: 0, reservedFiles: QUOTA_FILES, committedFiles: QUOTA_FILES });

    const refused = await emptyPresign(user.headers);
    expect(refused.statusCode).toBe(413);
    expect(refused.json()).toMatchObject({ statusCode: 413, code: 'FILE_COUNT_EXCEEDED', message: expect.stringContaining(`(${QUOTA_FILES},`) });
    const streamed = await note(user.headers);
    expect(streamed.statusCode).toBe(413);
    expect(streamed.json().code).toBe('FILE_COUNT_EXCEEDED');
    // Refusals hold nothing.
    expect(await usage.fileCounts(user.userId)).toEqual({ usedFiles: 0, reservedFiles: QUOTA_FILES, committedFiles: QUOTA_FILES });

    // Abandoned sessions give their files back when the sweep removes them.
    await t.app.sweeper.sweep({ now: Date.now() + (t.config.PENDING_UPLOAD_SECONDS + 60) * 1000, userId: user.userId });
    expect(await usage.fileCounts(user.userId)).toEqual({ usedFiles: 0, reservedFiles: 0, committedFiles: 0 });
    expect((await note(user.headers)).statusCode).toBe(201);
  });

  it('FU-03: stored files count; a delete gives one back; a refused upload (wrong type) holds none', async () => {
    const user = await newUser();
    const ids: string[] = [];
    for (let i = 0; i < QUOTA_FILES; i++) {
      const res = await note(user.headers, `n${i}.txt`);
      expect(res.statusCode).toBe(201);
      ids.push(res.json().id);
    }
    expect(await usage.fileCounts(user.userId)).toEqual({ usedFiles: QUOTA_FILES, reservedFiles: 0, committedFiles: QUOTA_FILES });
    expect((await note(user.headers)).json().code).toBe('FILE_COUNT_EXCEEDED');
    expect((await t.app.inject({ method: 'DELETE', url: `/api/files/${ids[0]}`, headers: user.headers })).statusCode).toBe(204);
    const wrongType = await upload(t.app, user.headers, [{ name: 'file', filename: 'photo.pdf', content: pngBytes(1000) }]);
    expect(wrongType.statusCode).toBe(415);
    expect(await usage.fileCounts(user.userId)).toEqual({ usedFiles: QUOTA_FILES - 1, reservedFiles: 0, committedFiles: QUOTA_FILES - 1 });
    expect((await note(user.headers)).statusCode).toBe(201);
  });

  it('FU-03: a completed direct upload turns its held file into a stored one; a discarded one gives it back', async () => {
    const user = await newUser();
    const content = pngBytes(5000);
    const res = await presign(t.app, user.headers, { name: 'p.png', size: content.length, contentType: 'image/png', sensitive: false });
    const p = res.json() as { id: string; url: string; fields: Record<string, string> };
    expect(await postToS3(p, content)).toBeLessThan(300);
    expect((await t.app.inject({ method: 'POST', url: `/api/files/${p.id}/complete`, headers: user.headers })).statusCode).toBe(201);
    expect(await usage.fileCounts(user.userId)).toEqual({ usedFiles: 1, reservedFiles: 0, committedFiles: 1 });
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: content.length, reservedBytes: 0 });

    const bad = await presign(t.app, user.headers, { name: 'q.png', size: 5000, contentType: 'image/png', sensitive: false });
    const q = bad.json() as { id: string; url: string; fields: Record<string, string> };
    expect(await postToS3(q, Buffer.alloc(5000))).toBeLessThan(300);
    expect((await t.app.inject({ method: 'POST', url: `/api/files/${q.id}/complete`, headers: user.headers })).statusCode).toBe(415);
    expect(await usage.fileCounts(user.userId)).toEqual({ usedFiles: 1, reservedFiles: 0, committedFiles: 1 });
  });
});

describe('FU-03: pending direct uploads and the listing', () => {
  it('FU-03: the listing reads no pending upload: with 100 zero-byte sessions open, one query reads only the page', async () => {
    const big = await buildUploadApp({ LISTS_PER_MINUTE: '100000' });
    try {
      const user = await newUser();
      const stored = [];
      for (let i = 0; i < 3; i++) stored.push((await upload(big.app, user.headers, [{ name: 'file', filename: `f${i}.txt`, content: Buffer.from('x') }])).json().id);
      for (let i = 0; i < 100; i++) {
        expect((await presign(big.app, user.headers, { name: `s${i}.txt`, size: 0, contentType: 'text/plain', sensitive: false })).statusCode).toBe(201);
      }
      const queries: { scanned: number }[] = [];
      big.aws.dynamo.middlewareStack.add(
        (next, context) => async (args) => {
          const out = await next(args);
          if (/^Query(Command)?$/.test(String(context.commandName).replace(/Command$/, ''))) {
            queries.push({ scanned: Number((out.output as { ScannedCount?: number }).ScannedCount ?? 0) });
          }
          return out;
        },
        { step: 'initialize', name: 'countQueries' },
      );
      const page = await big.app.inject({ method: 'GET', url: '/api/files?limit=2', headers: user.headers });
      big.aws.dynamo.middlewareStack.remove('countQueries');
      expect(page.statusCode).toBe(200);
      expect(page.json().items.map((f: { id: string }) => f.id)).toEqual([stored[2], stored[1]]);
      // One query, which evaluated the page and the one item that says another page follows.
      expect(queries).toEqual([{ scanned: 3 }]);
      const rest = await big.app.inject({ method: 'GET', url: `/api/files?limit=2&cursor=${page.json().nextCursor}`, headers: user.headers });
      expect(rest.json()).toEqual({ items: [expect.objectContaining({ id: stored[0] })], nextCursor: null });
    } finally {
      await big.app.close();
    }
  });

  it('FU-03: a pending upload is still found by id, completed, and swept like before', async () => {
    const user = await newUser();
    const res = await presign(t.app, user.headers, { name: 'later.txt', size: 4, contentType: 'text/plain', sensitive: false });
    const id = res.json().id as string;
    expect(await files.get(user.userId, id)).toMatchObject({ fileId: id, status: 'pending' });
    // Nothing uploaded yet: 404 NOTHING_UPLOADED, and the upload stays pending.
    expect((await t.app.inject({ method: 'POST', url: `/api/files/${id}/complete`, headers: user.headers })).json().code).toBe('NOTHING_UPLOADED');
    expect(await files.get(user.userId, id)).toMatchObject({ fileId: id, status: 'pending' });
    expect((await list(user.headers)).json().items).toEqual([]);
    expect((await t.app.inject({ method: 'GET', url: `/api/files/${id}`, headers: user.headers })).statusCode).toBe(404);
    const swept = await t.app.sweeper.sweep({ now: Date.now() + (t.config.PENDING_UPLOAD_SECONDS + 60) * 1000, userId: user.userId });
    expect(swept.expiredPending).toBe(1);
    expect(await files.get(user.userId, id)).toBeUndefined();
    expect(await usage.usage(user.userId)).toEqual({ usedBytes: 0, reservedBytes: 0 });
  });
});

describe('FU-03: the listing has a rate limit per user (LISTS_PER_MINUTE)', () => {
  it('FU-03: the listing past LISTS_PER_MINUTE is 429 RATE_LIMITED with Retry-After; another user is not affected', async () => {
    const limited = await buildUploadApp({ LISTS_PER_MINUTE: '3' });
    try {
      const [a, b] = [await newUser(), await newUser()];
      const get = (headers: Record<string, string>) => limited.app.inject({ method: 'GET', url: '/api/files', headers });
      for (let i = 0; i < 3; i++) expect((await get(a.headers)).statusCode).toBe(200);
      const refused = await get(a.headers);
      expect(refused.statusCode).toBe(429);
      expect(refused.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect((await get(b.headers)).statusCode).toBe(200);
    } finally {
      await limited.app.close();
    }
  });
});
