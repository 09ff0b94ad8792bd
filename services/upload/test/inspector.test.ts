import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FILE_TYPES } from '../src/content/file-types';
import { Inspector, type Verdict } from '../src/content/inspector';
import { officeFile, pngBytes, zipBytes } from './helpers';

/**
 * The inspector on its own (no AWS): the content checks of every type, the final verdict at the
 * end of the stream, and what reaches the destination. Each file is fed in chunks of `chunk`
 * bytes, so checks that span chunks (a UTF-8 character, a zip directory) are exercised.
 */
async function inspect(ext: string, content: Buffer, opts: { chunk?: number; limit?: number } = {}) {
  const type = FILE_TYPES[ext];
  if (!type) throw new Error(`no type ${ext}`);
  const chunk = opts.chunk ?? 16 * 1024;
  const chunks = Array.from({ length: Math.ceil(content.length / chunk) }, (_, i) => content.subarray(i * chunk, (i + 1) * chunk));
  const inspector = new Inspector({
    name: `file.${ext}`,
    type,
    limit: opts.limit ?? Number.MAX_SAFE_INTEGER,
    overLimit: (size) => new Error(`over the limit at ${size}`),
  });
  let received = 0;
  const destination = new Writable({
    write(c: Buffer, _e, done) {
      received += c.length;
      done();
    },
  });
  try {
    await pipeline(Readable.from(chunks), inspector, destination);
    return { verdict: inspector.verdict as Verdict, received };
  } catch (err) {
    return { error: err as Error & { code?: string; statusCode?: number }, received };
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

describe('FU-05/FU-08: Office files are recognised by the zip directory, whatever the order of entries', () => {
  it.each([
    ['docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    ['pptx', 'application/vnd.openxmlformats-officedocument.presentationml.presentation'],
  ] as const)('a 2 MiB .%s with the media first and [Content_Types].xml last is accepted', async (kind, contentType) => {
    const file = officeFile(kind);
    const { verdict, received } = await inspect(kind, file);
    expect(verdict).toEqual({ size: file.length, sha256: sha256(file), contentType });
    expect(received).toBe(file.length);
  });

  it('accepts it delivered in chunks of 1000 bytes, and with an archive comment after the directory', async () => {
    const file = officeFile('docx', 300_000);
    expect((await inspect('docx', file, { chunk: 1000 })).verdict?.size).toBe(file.length);
    const commented = zipBytes(
      [
        { name: 'word/document.xml', data: Buffer.from('<w/>') },
        { name: '[Content_Types].xml', data: Buffer.from('<Types/>') },
      ],
      'written by an editor',
    );
    expect((await inspect('docx', commented)).verdict?.size).toBe(commented.length);
  });

  it.each([
    ['a workbook named .docx', 'docx', officeFile('xlsx', 10_000), 'is an Excel workbook (.xlsx), not a Word document (.docx): rename it to .xlsx'],
    ['a plain zip named .pptx', 'pptx', zipBytes([{ name: 'notes.txt', data: Buffer.from('hi') }]), 'is a zip archive, not a PowerPoint presentation (.pptx): if it is an archive, name it .zip'],
    ['a docx with macros', 'docx', officeFile('docx', 10_000, { macros: true }), 'contains macros'],
    ['a docx cut short', 'docx', officeFile('docx', 100_000).subarray(0, 90_000), 'is not a complete zip archive'],
    ['a zip header and nothing else', 'docx', Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(100)]), 'is not a complete zip archive'],
    ['a PDF named .xlsx', 'xlsx', Buffer.from('%PDF-1.7 ...'), 'is a PDF document, not an Excel workbook (.xlsx): rename it to .pdf'],
  ])('FU-05: %s is refused in words (415)', async (_label, ext, content, message) => {
    const { error } = await inspect(ext, content);
    expect(error).toMatchObject({ code: 'UNSUPPORTED_FILE_TYPE', statusCode: 415 });
    expect(error?.message).toContain(message);
  });

  it('FU-08: an archive whose directory is larger than the checked tail is refused, not unpacked', async () => {
    const entries = Array.from({ length: 12_000 }, (_, i) => ({ name: `word/media/${'x'.repeat(80)}-${i}.bin`, data: Buffer.alloc(0) }));
    const file = zipBytes([...entries, { name: '[Content_Types].xml', data: Buffer.from('<Types/>') }]);
    const { error } = await inspect('docx', file);
    expect(error?.message).toContain('has more parts than the service can check');
  });

  it('FU-08: a zip whose entry claims a huge size is stored as sent (only the directory is read)', async () => {
    const bomb = zipBytes([{ name: 'bomb.txt', data: Buffer.alloc(10) }]);
    bomb.writeUInt32LE(0xffffffff, 22); // the local header's uncompressed size
    const { verdict } = await inspect('zip', bomb);
    expect(verdict).toMatchObject({ size: bomb.length, contentType: 'application/zip' });
  });
});

describe('FU-05/FU-06: text in the encodings people have', () => {
  const utf16 = (text: string, endian: 'le' | 'be') => {
    const le = Buffer.from(`\ufeff${text}`, 'utf16le');
    return endian === 'le' ? le : le.swap16();
  };

  it.each([
    ['UTF-8', 'txt', Buffer.from('Grüße aus Zürich — 12,50 €\n'), 'text/plain; charset=utf-8'],
    ['UTF-8 with a byte-order mark', 'csv', Buffer.from('\ufeffname;city\nJosé;Zürich\n'), 'text/csv; charset=utf-8'],
    ['a Windows-1252 CSV from a spreadsheet', 'csv', Buffer.from([...Buffer.from('Jos'), 0xe9, ...Buffer.from(';Z'), 0xfc, ...Buffer.from('rich;12,50 '), 0x80, 0x0d, 0x0a]), 'text/csv; charset=windows-1252'],
    ['Latin-1 text', 'txt', Buffer.from('Ça coûte 5 £, señor.\n', 'latin1'), 'text/plain; charset=windows-1252'],
    ['UTF-16 little-endian with a byte-order mark', 'txt', utf16('Notes: 日本語 and Zürich\r\n', 'le'), 'text/plain; charset=utf-16le'],
    ['UTF-16 big-endian with a byte-order mark', 'txt', utf16('Notes: 日本語 and Zürich\r\n', 'be'), 'text/plain; charset=utf-16be'],
    ['empty text', 'txt', Buffer.alloc(0), 'text/plain; charset=utf-8'],
  ])('%s is accepted with its charset recorded', async (_label, ext, content, contentType) => {
    const { verdict } = await inspect(ext, content);
    expect(verdict).toEqual({ size: content.length, sha256: sha256(content), contentType });
  });

  it('the charset holds for the whole file: accents after the first 64 KiB make it Windows-1252, not UTF-8', async () => {
    const rows = Buffer.from('id;name;amount\n'.padEnd(70 * 1024, 'x\n'));
    const late = Buffer.concat([rows, Buffer.from([0x4a, 0x6f, 0x73, 0xe9, 0x0a])]);
    expect((await inspect('csv', late)).verdict?.contentType).toBe('text/csv; charset=windows-1252');
  });

  it('UTF-8 characters cut between chunks stay UTF-8', async () => {
    const text = Buffer.from('€日本😀'.repeat(40_000));
    for (const chunk of [1, 2, 3, 5, 4096]) {
      expect((await inspect('txt', text.subarray(0, chunk === 1 ? 13 * 230 : text.length), { chunk })).verdict?.contentType).toBe(
        'text/plain; charset=utf-8',
      );
    }
  });

  it.each([
    ['HTML in UTF-16', 'txt', utf16('<html><script>alert(1)</script></html>', 'le'), 'contains web page markup'],
    ['HTML after a UTF-8 byte-order mark', 'csv', Buffer.from('\ufeff  <!doctype html><p>'), 'contains web page markup'],
    ['UTF-16 without a byte-order mark', 'txt', Buffer.from('plain words', 'utf16le'), 'without a byte-order mark: save it as UTF-8'],
    ['binary data', 'csv', randomBytes(4096), 'check that you picked the right file'],
    ['zero bytes after the first 64 KiB', 'txt', Buffer.concat([Buffer.alloc(80 * 1024, 'a'), Buffer.alloc(16)]), 'contains binary data (zero bytes) further on'],
    ['JSON saved as Windows-1252', 'json', Buffer.from('{"name": "Jos\u00e9"}', 'latin1'), 'JSON files must be saved as UTF-8'],
    ['a PNG named .txt', 'txt', pngBytes(1000), 'is a PNG image, not a plain text file: rename it to .png'],
  ])('FU-06: %s is refused in words a person can act on', async (_label, ext, content, message) => {
    const { error } = await inspect(ext, content);
    expect(error).toMatchObject({ code: 'UNSUPPORTED_FILE_TYPE' });
    expect(error?.message).toContain(message);
  });
});

describe('FU-05: refusals say what the file is', () => {
  it.each([
    ['a PNG named .jpg', 'jpg', pngBytes(4096), '"file.jpg" is a PNG image, not a JPEG image: rename it to .png and upload it again'],
    ['an empty .pdf', 'pdf', Buffer.alloc(0), '"file.pdf" is empty (0 bytes), so it cannot be a PDF document'],
    ['3 MiB of zero bytes named .pdf', 'pdf', Buffer.alloc(3 * MiB), 'contains only zero bytes, so it is not a PDF document'],
    ['a Windows program named .pdf', 'pdf', Buffer.concat([Buffer.from('MZ'), randomBytes(1000)]), 'is a Windows program, not a PDF document'],
    ['an old Word file named .docx', 'docx', Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0]), 'save it in the newer format'],
  ])('%s', async (_label, ext, content, message) => {
    const { error } = await inspect(ext, content);
    expect(error?.message).toContain(message);
  });
});

describe('the inspector as a stream stage', () => {
  it('FU-05: nothing of a file of the wrong type reaches the destination', async () => {
    const { error, received } = await inspect('png', Buffer.concat([Buffer.from('<html>'), randomBytes(200 * 1024)]));
    expect(error?.message).toContain('is a web page (HTML), not a PNG image');
    expect(received).toBe(0);
  });

  it('FU-05: the final verdict comes before the end of the stream reaches the destination', async () => {
    // A docx whose directory is wrong: its first bytes pass, so bytes flow, but the end never arrives.
    const { error, received } = await inspect('docx', officeFile('xlsx', 300_000));
    expect(error?.message).toContain('is an Excel workbook');
    expect(received).toBeGreaterThan(0);
  });

  it('FU-01: the first byte past the limit fails the stream', async () => {
    const { error } = await inspect('png', pngBytes(100_001), { limit: 100_000 });
    expect(error?.message).toBe('over the limit at 100001');
    expect((await inspect('png', pngBytes(100_000), { limit: 100_000 })).verdict?.size).toBe(100_000);
  });

  it('FU-15: size and SHA-256 are those of every byte, in chunks of any size', async () => {
    const file = pngBytes(5 * MiB + 7);
    for (const chunk of [1024, 65_536, 1_000_003]) {
      expect((await inspect('png', file, { chunk })).verdict).toEqual({ size: file.length, sha256: sha256(file), contentType: 'image/png' });
    }
  });
});
