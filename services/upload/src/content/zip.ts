/**
 * The entry names of a zip archive, read from its central directory at the end of the file
 * (APPNOTE.TXT 4.3.12-4.3.16, ZIP64 included). Nothing is decompressed or extracted (FU-08): the
 * directory is a list of names and sizes, and only the names are read.
 */

/** Bytes at the end of a file that the directory must fit in: about 15,000 entries of usual names. */
export const ZIP_TAIL_BYTES = 1024 * 1024;

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL_ENTRY = 0x02014b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

export type ZipDirectory =
  | { ok: true; names: string[] }
  /** `missing`: no directory at the end (not a zip, or cut short); `too-large`: it does not fit the tail; `damaged`: it is inconsistent. */
  | { ok: false; problem: 'missing' | 'too-large' | 'damaged' };

/**
 * Reads the central directory from `tail`, the last bytes of a file of `size` bytes (the whole
 * file when it is shorter than ZIP_TAIL_BYTES).
 */
export function readZipDirectory(tail: Buffer, size: number): ZipDirectory {
  const tailStart = size - tail.length;
  const eocd = findEndOfCentralDirectory(tail);
  if (eocd < 0) return { ok: false, problem: 'missing' };
  let entries = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdEnd = eocd;
  if (entries === 0xffff || cdSize === 0xffffffff || tail.readUInt32LE(eocd + 16) === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || tail.readUInt32LE(locator) !== ZIP64_LOCATOR) return { ok: false, problem: locator < 0 ? 'too-large' : 'damaged' };
    const record = Number(tail.readBigUInt64LE(locator + 8)) - tailStart;
    if (record < 0) return { ok: false, problem: 'too-large' };
    if (record + 56 > locator || tail.readUInt32LE(record) !== ZIP64_EOCD) return { ok: false, problem: 'damaged' };
    entries = Number(tail.readBigUInt64LE(record + 32));
    cdSize = Number(tail.readBigUInt64LE(record + 40));
    cdEnd = record;
  }
  // The directory ends where the end record begins (data prepended to the archive does not matter).
  const cdStart = cdEnd - cdSize;
  if (cdStart < 0) return { ok: false, problem: cdStart + tailStart < 0 ? 'damaged' : 'too-large' };
  const names: string[] = [];
  let p = cdStart;
  for (let i = 0; i < entries; i += 1) {
    if (p + 46 > cdEnd || tail.readUInt32LE(p) !== CENTRAL_ENTRY) return { ok: false, problem: 'damaged' };
    const flags = tail.readUInt16LE(p + 8);
    const nameLength = tail.readUInt16LE(p + 28);
    const next = p + 46 + nameLength + tail.readUInt16LE(p + 30) + tail.readUInt16LE(p + 32);
    if (next > cdEnd) return { ok: false, problem: 'damaged' };
    // Bit 11: the name is UTF-8; otherwise CP437, whose ASCII range is all that is compared here.
    names.push(tail.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLength));
    p = next;
  }
  return { ok: true, names };
}

/** Index of the end-of-central-directory record: the last one whose comment ends exactly at the end. */
function findEndOfCentralDirectory(tail: Buffer): number {
  const lowest = Math.max(0, tail.length - EOCD_SIZE - MAX_COMMENT);
  for (let i = tail.length - EOCD_SIZE; i >= lowest; i -= 1) {
    if (tail.readUInt32LE(i) === EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tail.length) return i;
  }
  return -1;
}
