import { InvalidFileName, UnsupportedFileType } from '../errors';
import { type ContentCheck, ContentRefused } from './content-check';
import { checkFileName, NameRefused } from './file-names';
import { beginText } from './text';
import { readZipDirectory, ZIP_TAIL_BYTES } from './zip';

/**
 * What may be stored: an allow-list of extensions, each with the media type the service records
 * and a check of the content (FU-04, FU-05, FU-06). The client's Content-Type is never consulted.
 */
export interface FileType {
  ext: string;
  /** The media type, without parameters (text types add their charset once the whole file was seen). */
  mediaType: string;
  /** What a person calls it: "a PDF document". */
  label: string;
  /** Starts checking a file from its first bytes (the whole file when `complete`); throws ContentRefused. */
  begin(head: Buffer, complete: boolean): ContentCheck;
}

/** Bytes read before the first verdict on the type. */
export const SNIFF_BYTES = 64 * 1024;

const startsWith = (head: Buffer, ...bytes: number[]) => bytes.every((b, i) => head[i] === b);
const ascii = (head: Buffer, offset: number, text: string) => head.subarray(offset, offset + text.length).toString('latin1') === text;

/** Recognisable content, for messages that say what a file really is (and how to fix its name). */
const SIGNATURES: { test: (head: Buffer) => boolean; label: string; ext?: string }[] = [
  { test: (h) => ascii(h, 0, '%PDF-'), label: 'a PDF document', ext: 'pdf' },
  { test: (h) => startsWith(h, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), label: 'a PNG image', ext: 'png' },
  { test: (h) => startsWith(h, 0xff, 0xd8, 0xff), label: 'a JPEG image', ext: 'jpg' },
  { test: (h) => ascii(h, 0, 'GIF87a') || ascii(h, 0, 'GIF89a'), label: 'a GIF image', ext: 'gif' },
  { test: (h) => ascii(h, 0, 'RIFF') && ascii(h, 8, 'WEBP'), label: 'a WebP image', ext: 'webp' },
  { test: (h) => startsWith(h, 0x50, 0x4b, 0x03, 0x04) || startsWith(h, 0x50, 0x4b, 0x05, 0x06), label: 'a zip archive', ext: 'zip' },
  { test: (h) => startsWith(h, 0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1), label: 'an older Microsoft Office file (.doc, .xls or .ppt); save it in the newer format (.docx, .xlsx or .pptx)' },
  { test: (h) => ascii(h, 4, 'ftypheic') || ascii(h, 4, 'ftypheix') || ascii(h, 4, 'ftypmif1'), label: 'an HEIC image (as phones save photos); convert it to JPEG' },
  { test: (h) => ascii(h, 4, 'ftyp'), label: 'a video or audio file' },
  { test: (h) => ascii(h, 0, 'ID3') || startsWith(h, 0xff, 0xfb), label: 'an MP3 audio file' },
  { test: (h) => ascii(h, 0, 'MZ'), label: 'a Windows program' },
  { test: (h) => startsWith(h, 0x7f, 0x45, 0x4c, 0x46), label: 'a Linux program' },
  { test: (h) => [0xcafebabe, 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe].includes(h.length >= 4 ? h.readUInt32BE(0) : 0), label: 'a program' },
  { test: (h) => ascii(h, 0, '#!'), label: 'a script' },
  { test: (h) => startsWith(h, 0x1f, 0x8b), label: 'a gzip archive' },
  { test: (h) => startsWith(h, 0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c), label: 'a 7-Zip archive' },
  { test: (h) => ascii(h, 0, 'Rar!'), label: 'a RAR archive' },
  { test: (h) => ascii(h, 0, '{\\rtf'), label: 'an RTF document' },
  { test: (h) => /^\s*(<!doctype html|<html)/i.test(h.subarray(0, 512).toString('latin1')), label: 'a web page (HTML)' },
  { test: (h) => /^\s*(<\?xml[^>]*>\s*)?<svg/i.test(h.subarray(0, 512).toString('latin1')), label: 'an SVG image' },
];

/** The refusal for content that is not the type its extension promises. */
function notA(type: { label: string; ext: string }, head: Buffer, complete: boolean): ContentRefused {
  if (complete && head.length === 0) return new ContentRefused(`is empty (0 bytes), so it cannot be ${type.label}`);
  if (head.subarray(0, SNIFF_BYTES).every((b) => b === 0)) {
    return new ContentRefused(`contains only zero bytes, so it is not ${type.label}: the file may be damaged or not completely downloaded`);
  }
  const found = SIGNATURES.find((s) => s.test(head));
  if (!found) return new ContentRefused(`is not ${type.label}: its content does not start the way ${type.label} does; check that you picked the right file`);
  const rename = found.ext && found.ext !== type.ext ? `: rename it to .${found.ext} and upload it again` : '';
  return new ContentRefused(`is ${found.label}, not ${type.label}${rename}`);
}

/** A type recognised by its first bytes alone. */
function signature(ext: string, mediaType: string, label: string, test: (head: Buffer) => boolean): FileType {
  return {
    ext,
    mediaType,
    label,
    begin(head, complete) {
      if (!test(head)) throw notA({ label, ext }, head, complete);
      return { tailBytes: 0, update: () => undefined, current: () => mediaType, finish: () => mediaType };
    },
  };
}

function text(ext: string, mediaType: string, label: string, json = false): FileType {
  return {
    ext,
    mediaType,
    label,
    begin(head, complete) {
      const found = SIGNATURES.find((s) => s.ext !== undefined && s.test(head));
      if (found) throw new ContentRefused(`is ${found.label}, not ${label}${found.ext ? `: rename it to .${found.ext} and upload it again` : ''}`);
      return beginText(head, complete, { mediaType, json });
    },
  };
}

const OOXML_KINDS = [
  { folder: 'word/', ext: 'docx', label: 'a Word document (.docx)' },
  { folder: 'xl/', ext: 'xlsx', label: 'an Excel workbook (.xlsx)' },
  { folder: 'ppt/', ext: 'pptx', label: 'a PowerPoint presentation (.pptx)' },
] as const;

/**
 * An Office Open XML package (ECMA-376 part 2): a zip archive whose directory lists
 * `[Content_Types].xml` and the document's main folder, wherever those entries are in the file
 * (editors write them in any order). The directory is at the end, so the verdict comes at the end
 * of the stream; the archive is never unpacked (FU-08). Macro-enabled packages renamed to the
 * macro-free extension (a `vbaProject.bin` part) are refused.
 */
function ooxml(kind: (typeof OOXML_KINDS)[number], mediaType: string): FileType {
  const { ext, label } = kind;
  return {
    ext,
    mediaType,
    label,
    begin(head, complete) {
      if (!startsWith(head, 0x50, 0x4b, 0x03, 0x04)) throw notA({ label, ext }, head, complete);
      return {
        tailBytes: ZIP_TAIL_BYTES,
        update: () => undefined,
        current: () => mediaType,
        finish(size, tail) {
          const dir = readZipDirectory(tail, size);
          if (!dir.ok) {
            throw new ContentRefused(
              dir.problem === 'too-large'
                ? `has more parts than the service can check (its zip directory is over ${ZIP_TAIL_BYTES / 1024 / 1024} MiB), so it is not accepted as ${label}`
                : `is not a complete zip archive (its directory at the end is ${dir.problem}), so it is not ${label}: the file may be damaged or cut short`,
            );
          }
          const names = new Set(dir.names);
          const actual = names.has('[Content_Types].xml') ? OOXML_KINDS.find((k) => dir.names.some((n) => n.startsWith(k.folder))) : undefined;
          if (!actual) {
            const odf = names.has('mimetype') && names.has('content.xml');
            throw new ContentRefused(
              odf
                ? `is an OpenDocument file (.odt, .ods or .odp), not ${label}: save it as ${label} and upload it again`
                : `is a zip archive, not ${label}: if it is an archive, name it .zip`,
            );
          }
          if (actual.ext !== ext) throw new ContentRefused(`is ${actual.label}, not ${label}: rename it to .${actual.ext} and upload it again`);
          if (dir.names.some((n) => n.toLowerCase().endsWith('vbaproject.bin'))) {
            throw new ContentRefused(`contains macros, which a .${ext} file may not: save it without macros and upload it again`);
          }
          return mediaType;
        },
      };
    },
  };
}

const [docx, xlsx, pptx] = OOXML_KINDS;
const isZip = (h: Buffer) => startsWith(h, 0x50, 0x4b, 0x03, 0x04) || startsWith(h, 0x50, 0x4b, 0x05, 0x06);
const isJpeg = (h: Buffer) => startsWith(h, 0xff, 0xd8, 0xff);

export const FILE_TYPES: Record<string, FileType> = Object.fromEntries(
  [
    signature('pdf', 'application/pdf', 'a PDF document', (h) => ascii(h, 0, '%PDF-')),
    signature('png', 'image/png', 'a PNG image', (h) => startsWith(h, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)),
    signature('jpg', 'image/jpeg', 'a JPEG image', isJpeg),
    signature('jpeg', 'image/jpeg', 'a JPEG image', isJpeg),
    signature('gif', 'image/gif', 'a GIF image', (h) => ascii(h, 0, 'GIF87a') || ascii(h, 0, 'GIF89a')),
    signature('webp', 'image/webp', 'a WebP image', (h) => ascii(h, 0, 'RIFF') && ascii(h, 8, 'WEBP')),
    text('txt', 'text/plain', 'a plain text file'),
    text('csv', 'text/csv', 'a CSV file'),
    text('json', 'application/json', 'a JSON file', true),
    ooxml(docx, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'),
    ooxml(xlsx, 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'),
    ooxml(pptx, 'application/vnd.openxmlformats-officedocument.presentationml.presentation'),
    signature('zip', 'application/zip', 'a zip archive', isZip),
  ].map((type) => [type.ext, type]),
);

/** The types this deployment accepts (`ALLOWED_TYPES`), and the check of a name against them. */
export class AllowedTypes {
  private readonly types: ReadonlyMap<string, FileType>;

  constructor(list: string) {
    const types = new Map<string, FileType>();
    for (const ext of list.split(',').map((s) => s.trim().toLowerCase())) {
      const type = FILE_TYPES[ext];
      if (!type) throw new Error(`ALLOWED_TYPES names "${ext}", which the service cannot recognise from content`);
      types.set(ext, type);
    }
    this.types = types;
  }

  get extensions(): string[] {
    return [...this.types.keys()];
  }

  /** The stored name and the type its extension promises; refused before any byte is read. */
  resolve(raw: string): { name: string; type: FileType } {
    let parsed: { name: string; ext: string };
    try {
      parsed = checkFileName(raw);
    } catch (err) {
      if (err instanceof NameRefused) throw new InvalidFileName(err.message, { cause: err });
      throw err;
    }
    const type = this.types.get(parsed.ext);
    if (!type) throw new UnsupportedFileType(`Files of type .${parsed.ext} are not accepted; allowed: ${this.extensions.join(', ')}`);
    return { name: parsed.name, type };
  }
}
