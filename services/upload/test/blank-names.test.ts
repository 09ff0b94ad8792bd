import { buildUploadApp, closeAuth, newUser, parseDisposition, presign, s3Leftovers, upload, type UploadTestApp } from './helpers';

/**
 * Names that render blank (FU-04, FU-07): a file list showing an empty line, or a name that only
 * looks like a dotfile, hides what a file is. Each character that renders as nothing is refused
 * when nothing visible is left before the extension, through the streamed upload and the presign
 * alike; inside visible text it is sanitised so the stored name shows what the person sees.
 */
let t: UploadTestApp;
let user: Awaited<ReturnType<typeof newUser>>;
beforeAll(async () => {
  t = await buildUploadApp();
  user = await newUser();
});
afterAll(async () => {
  await t.app.close();
  await closeAuth();
});

const BLANK: [string, string][] = [
  ['\u3164', 'U+3164 HANGUL FILLER'],
  ['\u2800', 'U+2800 BRAILLE PATTERN BLANK'],
  ['\u115F', 'U+115F HANGUL CHOSEONG FILLER'],
  ['\u1160', 'U+1160 HANGUL JUNGSEONG FILLER'],
  ['\uFFA0', 'U+FFA0 HALFWIDTH HANGUL FILLER'],
  ['\u{1D159}', 'U+1D159 MUSICAL SYMBOL NULL NOTEHEAD'],
  ['\u200B', 'U+200B ZERO WIDTH SPACE'],
  ['\u200C', 'U+200C ZERO WIDTH NON-JOINER'],
  ['\u200D', 'U+200D ZERO WIDTH JOINER'],
  ['\u200E', 'U+200E LEFT-TO-RIGHT MARK'],
  ['\u200F', 'U+200F RIGHT-TO-LEFT MARK'],
  ['\u2060', 'U+2060 WORD JOINER'],
  ['\u2061', 'U+2061 FUNCTION APPLICATION'],
  ['\u2062', 'U+2062 INVISIBLE TIMES'],
  ['\u2063', 'U+2063 INVISIBLE SEPARATOR'],
  ['\u2064', 'U+2064 INVISIBLE PLUS'],
  ['\uFEFF', 'U+FEFF ZERO WIDTH NO-BREAK SPACE'],
  ['\uFE0F', 'U+FE0F VARIATION SELECTOR-16'],
  ['\uFE00', 'U+FE00 VARIATION SELECTOR-1'],
  ['\u{E0100}', 'U+E0100 VARIATION SELECTOR-17'],
  ['\u0301', 'U+0301 COMBINING ACUTE ACCENT, alone'],
  ['\u034F', 'U+034F COMBINING GRAPHEME JOINER'],
  ['\u3164\u2800\uFE0F', 'fillers and a selector together'],
  ['   ', 'spaces only'],
  ['\u3000', 'U+3000 IDEOGRAPHIC SPACE'],
  ['\u00A0', 'U+00A0 NO-BREAK SPACE'],
  ['\u2003\u2009', 'U+2003 EM SPACE and U+2009 THIN SPACE'],
];

describe('FU-04/FU-07: names that render blank are refused (400 INVALID_FILE_NAME), streamed or presigned', () => {
  it.each(BLANK)('%j (%s) before .txt: the streamed upload is refused, nothing stored', async (blank) => {
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: `${blank}.txt`, content: Buffer.from('hello') }]);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, code: 'INVALID_FILE_NAME' });
    expect(await s3Leftovers(t.aws, t.config.PRIMARY_BUCKET, user.userId)).toEqual({ objects: 0, multipartUploads: 0 });
  });

  it.each(BLANK)('%j (%s) before .txt: the presign is refused', async (blank) => {
    const res = await presign(t.app, user.headers, { name: `${blank}.txt`, size: 5, contentType: 'text/plain', sensitive: false });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, code: 'INVALID_FILE_NAME' });
  });

  it('the message says the name is blank, and how to fix it', async () => {
    const res = await upload(t.app, user.headers, [{ name: 'file', filename: '\u3164\u3164.pdf', content: Buffer.from('%PDF-1.4\n') }]);
    expect(res.json().message).toMatch(/blank.*give it a name/);
  });

  it('the listing shows no blank name', async () => {
    const items = (await t.app.inject({ method: 'GET', url: '/api/files', headers: user.headers })).json().items as unknown[];
    expect(items).toEqual([]);
  });
});

describe('FU-04/FU-07: blank characters inside visible text are sanitised', () => {
  it.each([
    ['report\u3164final.txt', 'report final.txt'],
    ['\u3164\u3164notes.txt', 'notes.txt'],
    ['\u2800hidden\u2800name.txt', 'hidden name.txt'],
    ['\uFFA0a.txt', 'a.txt'],
    ['\uFE0Fplan.txt', 'plan.txt'],
    ['q3 \u0301\u0301summary.txt', 'q3 summary.txt'],
    // Kept: a selector after an emoji, an accent on its letter, joiners inside an emoji sequence.
    ['\u2764\uFE0F love.txt', '\u2764\uFE0F love.txt'],
    ['cafe\u0301.txt', 'caf\u00E9.txt'],
    ['\u{1F468}\u200D\u{1F469}\u200D\u{1F467} family.txt', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467} family.txt'],
  ])('%j is stored as %j, streamed or presigned', async (sent, stored) => {
    const who = await newUser();
    const res = await upload(t.app, who.headers, [{ name: 'file', filename: sent, content: Buffer.from('hello') }]);
    expect(res.statusCode).toBe(201);
    expect(res.json().name).toBe(stored);
    const listed = (await t.app.inject({ method: 'GET', url: '/api/files', headers: who.headers })).json().items as { name: string }[];
    expect(listed.map((f) => f.name)).toEqual([stored]);
    const presigned = await presign(t.app, who.headers, { name: sent, size: 5, contentType: 'text/plain', sensitive: false });
    expect(presigned.statusCode).toBe(201);
    expect((await parseDisposition(presigned.json().fields['Content-Disposition'])).parameters.filename).toBe(stored);
  });
});
