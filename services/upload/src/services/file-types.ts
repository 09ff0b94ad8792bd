/**
 * What may be stored: an allow-list of extensions, each with the content type the service
 * records and a check of the file's first bytes (FU-04, FU-05, FU-06). The client's
 * Content-Type is never consulted.
 */
export interface FileType {
  ext: string;
  contentType: string;
  /** True when `head` (the first bytes; the whole file if shorter) is this type. */
  matches(head: Buffer, complete: boolean): boolean;
}

const startsWith = (head: Buffer, ...bytes: number[]) => bytes.every((b, i) => head[i] === b);
const ascii = (head: Buffer, offset: number, text: string) => head.subarray(offset, offset + text.length).toString('latin1') === text;
const isZip = (head: Buffer) => startsWith(head, 0x50, 0x4b, 0x03, 0x04) || startsWith(head, 0x50, 0x4b, 0x05, 0x06);
/** An Office Open XML package: a zip whose early entries name the package's main folder. */
const ooxml = (folder: string) => (head: Buffer) =>
  isZip(head) && head.includes('[Content_Types].xml', 0, 'latin1') && head.includes(folder, 0, 'latin1');

const ACTIVE_CONTENT = /^\s*(<!doctype|<html|<head|<body|<script|<svg|<\?xml|<iframe|<object|<embed|<meta)/i;

/** Text: valid UTF-8 (a cut at the sniff boundary allowed), no NUL bytes, not markup a browser would run. */
function isText(head: Buffer, complete: boolean): boolean {
  if (head.includes(0)) return false;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(complete ? head : trimPartialUtf8(head));
  } catch {
    return false;
  }
  return !ACTIVE_CONTENT.test(text.replace(/^\uFEFF/, ''));
}

function trimPartialUtf8(buf: Buffer): Buffer {
  // Drop an incomplete multi-byte sequence at the end (at most 3 bytes).
  for (let back = 1; back <= Math.min(3, buf.length); back += 1) {
    const byte = buf[buf.length - back] ?? 0;
    if ((byte & 0xc0) === 0xc0) return buf.subarray(0, buf.length - back);
    if ((byte & 0x80) === 0) break;
  }
  return buf;
}

const isJsonStart = (head: Buffer, complete: boolean) =>
  isText(head, complete) && /^\uFEFF?\s*[{[]/.test(head.subarray(0, 1024).toString('utf8'));

export const FILE_TYPES: Record<string, FileType> = Object.fromEntries(
  (
    [
      ['pdf', 'application/pdf', (h: Buffer) => ascii(h, 0, '%PDF-')],
      ['png', 'image/png', (h: Buffer) => startsWith(h, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)],
      ['jpg', 'image/jpeg', (h: Buffer) => startsWith(h, 0xff, 0xd8, 0xff)],
      ['jpeg', 'image/jpeg', (h: Buffer) => startsWith(h, 0xff, 0xd8, 0xff)],
      ['gif', 'image/gif', (h: Buffer) => ascii(h, 0, 'GIF87a') || ascii(h, 0, 'GIF89a')],
      ['webp', 'image/webp', (h: Buffer) => ascii(h, 0, 'RIFF') && ascii(h, 8, 'WEBP')],
      ['txt', 'text/plain; charset=utf-8', isText],
      ['csv', 'text/csv; charset=utf-8', isText],
      ['json', 'application/json', isJsonStart],
      ['docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', ooxml('word/')],
      ['xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', ooxml('xl/')],
      ['pptx', 'application/vnd.openxmlformats-officedocument.presentationml.presentation', ooxml('ppt/')],
      ['zip', 'application/zip', isZip],
    ] as const
  ).map(([ext, contentType, matches]) => [ext, { ext, contentType, matches }]),
);

/** Bytes read before deciding the type (OOXML needs its first entries). */
export const SNIFF_BYTES = 64 * 1024;

export const MAX_NAME_LENGTH = 255;

/**
 * The stored file name (FU-04, FU-07): decoded and NFC-normalised, path parts dropped, control
 * and quote-like characters removed, trailing dots/spaces rejected, length-limited. Returns the
 * name and its lower-case extension, or undefined when the name cannot be accepted.
 */
export function normaliseFileName(raw: string): { name: string; ext: string } | undefined {
  let name = raw;
  try {
    if (/%[0-9a-f]{2}/i.test(name)) name = decodeURIComponent(name);
  } catch {
    return undefined;
  }
  name = name.normalize('NFC');
  // NUL, CR/LF and the other control characters (a.php%00.jpg, header injection).
  if ([...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return undefined;
  name = name.split(/[\\/]/).pop() ?? '';
  if (name !== name.trim() || /[. ]$/.test(name)) return undefined; // "a.jpg." and "a.jpg " tricks
  if (/[;:*?"<>|]/.test(name)) return undefined; // "a.php;.jpg" and header/shell metacharacters
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || name.startsWith('.')) return undefined;
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return undefined;
  return { name, ext: name.slice(dot + 1).toLowerCase() };
}
