import { isUtf8 } from 'node:buffer';
import { type ContentCheck, ContentRefused } from './content-check';

/**
 * Text files as people have them (FU-05, FU-06): UTF-8 with or without a byte-order mark, UTF-16
 * with a byte-order mark, and Windows-1252 / Latin-1 (what spreadsheets and older editors save on
 * Windows). The encoding is recognised from the bytes, the first bytes are decoded and checked
 * (no binary data, no markup a browser would run), and the rest of the stream is followed so the
 * recorded charset is true for the whole file: a file that is valid UTF-8 from start to end is
 * UTF-8; one that is not (a Windows-1252 CSV whose accents appear late) is Windows-1252.
 */

export type TextEncoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'windows-1252';

/** Markup a browser would render or run if it ever treated the file as a page. */
const ACTIVE_CONTENT = /^\s*(<!doctype|<html|<head|<body|<script|<svg|<\?xml|<iframe|<object|<embed|<meta)/i;
/** C0 controls other than tab, line feeds, form feed, carriage return, SUB and ESC; C1 controls. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const BINARY = /[\u0000-\u0008\u000e-\u0019\u001c-\u001f\u0080-\u009f]/;
/** The same for Windows-1252 read as Latin-1: C0 controls, and the five bytes Windows-1252 leaves undefined. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const BINARY_1252 = /[\u0000-\u0008\u000e-\u0019\u001c-\u001f\u0081\u008d\u008f\u0090\u009d]/;

/** Validates UTF-8 chunk by chunk (a sequence may be cut between chunks), without copying chunks. */
export class Utf8Validator {
  private carry: Buffer = Buffer.alloc(0);
  valid = true;

  update(chunk: Buffer): boolean {
    if (!this.valid) return false;
    let start = 0;
    if (this.carry.length > 0) {
      const need = sequenceLength(this.carry[0] ?? 0) - this.carry.length;
      const joined = Buffer.concat([this.carry, chunk.subarray(0, need)]);
      if (joined.length < this.carry.length + need) {
        // Still incomplete: every byte so far must be a continuation byte.
        this.carry = joined;
        this.valid = joined.subarray(1).every((b) => (b & 0xc0) === 0x80);
        return this.valid;
      }
      this.valid = isUtf8(joined);
      if (!this.valid) return false;
      start = need;
    }
    const body = chunk.subarray(start);
    const cut = incompleteTail(body);
    this.valid = isUtf8(body.subarray(0, body.length - cut));
    this.carry = Buffer.from(body.subarray(body.length - cut));
    return this.valid;
  }

  /** True when everything seen was UTF-8 and nothing is left cut off. */
  end(): boolean {
    return this.valid && this.carry.length === 0;
  }
}

/** Length of the sequence a UTF-8 lead byte starts (0 for a byte that cannot lead one). */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** Bytes at the end of `buf` that begin a sequence the next chunk completes (0 to 3). */
function incompleteTail(buf: Buffer): number {
  for (let back = 1; back <= Math.min(3, buf.length); back += 1) {
    const byte = buf[buf.length - back] ?? 0;
    if ((byte & 0xc0) === 0x80) continue;
    const length = sequenceLength(byte);
    return length > back ? back : 0;
  }
  return 0;
}

/** More than a third of the bytes at odd (or even) positions are zero: UTF-16 without its byte-order mark. */
function looksLikeBomlessUtf16(head: Buffer): boolean {
  const sample = head.subarray(0, 1024);
  if (sample.length < 8) return false;
  let even = 0;
  let odd = 0;
  for (let i = 0; i < sample.length; i += 2) {
    if (sample[i] === 0) even += 1;
    if (sample[i + 1] === 0) odd += 1;
  }
  const half = sample.length / 2;
  return even > half / 3 || odd > half / 3;
}

export interface TextOptions {
  /** The media type recorded, e.g. `text/csv`. */
  mediaType: string;
  /** `json`: UTF-8 only (RFC 8259), and it must start like an object or an array. */
  json?: boolean;
}

/** Starts checking a text file from its first bytes (all of them when `complete`). */
export function beginText(head: Buffer, complete: boolean, opts: TextOptions): ContentCheck {
  let encoding: TextEncoding;
  let bom = 0;
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) {
    encoding = 'utf-8';
    bom = 3;
  } else if ((head[0] === 0xff && head[1] === 0xfe && head[2] === 0 && head[3] === 0) || (head[0] === 0 && head[1] === 0 && head[2] === 0xfe && head[3] === 0xff)) {
    throw new ContentRefused('is UTF-32 text, which is not accepted: save it as UTF-8 and upload it again');
  } else if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    if (opts.json) throw new ContentRefused('is saved as UTF-16, but JSON files must be UTF-8: save it as UTF-8 and upload it again');
    encoding = head[0] === 0xff ? 'utf-16le' : 'utf-16be';
    bom = 2;
  } else if (looksLikeBomlessUtf16(head)) {
    throw new ContentRefused('looks like UTF-16 text without a byte-order mark: save it as UTF-8 (or as UTF-16 with a byte-order mark) and upload it again');
  } else {
    encoding = 'utf-8';
  }

  const utf8 = encoding === 'utf-8' ? new Utf8Validator() : undefined;
  if (utf8 && (!utf8.update(head.subarray(bom)) || (complete && !utf8.end()))) {
    if (opts.json || bom) throw new ContentRefused(`is not valid UTF-8 text${opts.json ? ': JSON files must be saved as UTF-8' : ''}: save it as UTF-8 and upload it again`);
    encoding = 'windows-1252';
  }

  const decodable = encoding.startsWith('utf-16') ? head.subarray(bom, bom + ((head.length - bom) & ~1)) : head.subarray(bom);
  // Windows-1252 is read as Latin-1 (the same for every byte the checks below look at).
  let text: string;
  try {
    text =
      encoding === 'windows-1252'
        ? decodable.toString('latin1')
        : new TextDecoder(encoding, { fatal: true }).decode(decodable, { stream: !complete });
  } catch {
    throw new ContentRefused(`is not valid ${encoding.toUpperCase()} text: save it as UTF-8 and upload it again`);
  }
  if ((encoding === 'windows-1252' ? BINARY_1252 : BINARY).test(text)) {
    throw new ContentRefused(
      'contains binary data, so it is not a text file (text is accepted as UTF-8, UTF-16 with a byte-order mark, Windows-1252 or Latin-1): check that you picked the right file',
    );
  }
  if (ACTIVE_CONTENT.test(text)) {
    throw new ContentRefused('contains web page markup (HTML, SVG or XML), which is not accepted because a browser could run it');
  }
  if (opts.json && !/^\s*[{[]/.test(text)) throw new ContentRefused('is not JSON: a JSON file starts with { or [');

  let utf16Bytes = head.length - bom;
  const contentType = () => (opts.json ? opts.mediaType : `${opts.mediaType}; charset=${encoding}`);
  return {
    tailBytes: 0,
    current: contentType,
    update(chunk) {
      if (encoding.startsWith('utf-16')) {
        utf16Bytes += chunk.length;
        return;
      }
      if (chunk.includes(0)) throw new ContentRefused('contains binary data (zero bytes) further on, so it is not a text file');
      if (utf8?.valid && !utf8.update(chunk)) {
        if (opts.json || bom) throw new ContentRefused(`is not valid UTF-8 text throughout${opts.json ? ': JSON files must be saved as UTF-8' : ''}: save it as UTF-8 and upload it again`);
        encoding = 'windows-1252';
      }
    },
    finish() {
      if (encoding.startsWith('utf-16') && utf16Bytes % 2 !== 0) {
        throw new ContentRefused('ends in the middle of a character (UTF-16 text has an even number of bytes): the file may be damaged');
      }
      if (encoding === 'utf-8' && utf8 && !utf8.end()) {
        if (opts.json || bom) throw new ContentRefused('ends in the middle of a UTF-8 character: the file may be damaged');
        encoding = 'windows-1252';
      }
      return contentType();
    },
  };
}
