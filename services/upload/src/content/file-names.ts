/**
 * The stored file name (FU-04, FU-07). A name is data: it never becomes a key, a path or a shell
 * argument; it is stored in the metadata store and sent back in an RFC 6266/5987-encoded
 * Content-Disposition. So a name is kept as the browser sent it (no percent-decoding: browsers
 * send names raw), only NFC-normalised and reduced to its last path segment, and accepted when it
 * can be stored and shown safely. Refused, each with a reason a person can act on:
 * - control characters (C0, DEL, C1), line and paragraph separators, text that is not valid Unicode;
 * - bidirectional controls (U+202E makes `invoice\u202Efdp.txt` display as `invoicetxt.pdf`) and
 *   other invisible format characters; ZERO WIDTH (NON-)JOINER stay allowed between visible
 *   characters (emoji sequences, Persian and Indic scripts need them);
 * - spaces at either end and dots at the end (Windows drops them: `a.jpg.` tricks);
 * - a name that renders blank: nothing visible before the extension, only spaces, blank letters
 *   (HANGUL FILLER U+3164 and its kin, BRAILLE PATTERN BLANK U+2800), combining marks or
 *   variation selectors with nothing to sit on (`\u3164.pdf` would show as an empty line);
 * - an extension a web server would run, hidden before `;` or an encoded NUL (`a.php;.jpg`,
 *   `a.php%00.jpg`);
 * - no extension, or more than 255 characters.
 * Sanitised, when the name has visible text around them: blank letters become a space (removed at
 * the start of the name), and combining marks or variation selectors that follow nothing visible
 * (at the start, after a space) are dropped, so the stored name shows what the person sees.
 */

export const MAX_NAME_LENGTH = 255;

/** Why a name was refused, in words for the person who chose it. */
export class NameRefused extends Error {}

/** Characters that change the display order of the text around them. */
const BIDI_CONTROLS: Record<number, string> = {
  0x061c: 'ARABIC LETTER MARK',
  0x200e: 'LEFT-TO-RIGHT MARK',
  0x200f: 'RIGHT-TO-LEFT MARK',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING',
  0x202b: 'RIGHT-TO-LEFT EMBEDDING',
  0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE',
  0x202e: 'RIGHT-TO-LEFT OVERRIDE',
  0x2066: 'LEFT-TO-RIGHT ISOLATE',
  0x2067: 'RIGHT-TO-LEFT ISOLATE',
  0x2068: 'FIRST STRONG ISOLATE',
  0x2069: 'POP DIRECTIONAL ISOLATE',
};

/** Names of the invisible characters seen most often, for the message. */
const INVISIBLE_NAMES: Record<number, string> = {
  0x00ad: 'SOFT HYPHEN',
  0x200b: 'ZERO WIDTH SPACE',
  0x200c: 'ZERO WIDTH NON-JOINER',
  0x200d: 'ZERO WIDTH JOINER',
  0x2060: 'WORD JOINER',
  0xfeff: 'ZERO WIDTH NO-BREAK SPACE',
};

/** Extensions a web server may execute or a browser may render as a page. */
const RUNNABLE = new Set(
  'php php3 php4 php5 php7 php8 phtml phar asp aspx ascx ashx asmx cer jsp jspx cgi pl py rb sh bash exe dll com bat cmd scr msi hta js mjs vbs ps1 jar html htm shtml xhtml svg'.split(' '),
);

const JOINERS = new Set([0x200c, 0x200d]);
const CONTROL = /[\p{Cc}\u2028\u2029]/u;
const LONE_SURROGATE = /\p{Cs}/u;
const FORMAT = /\p{Cf}/gu;
const LETTER_OR_MARK = /[\p{L}\p{M}\p{N}\p{S}\p{P}]/u;
const HIDDEN_EXTENSION = /\.([a-z0-9]{1,10})(?:;|%00)/gi;
/**
 * Letters and symbols that render as nothing or as a blank: the Hangul fillers (default-ignorable
 * letters) and BRAILLE PATTERN BLANK, MUSICAL SYMBOL NULL NOTEHEAD.
 */
const BLANK_LETTERS = /[\u115F\u1160\u3164\uFFA0\u2800\u{1D159}]/gu;
const LEADING_BLANK_LETTERS = /^[\u115F\u1160\u3164\uFFA0\u2800\u{1D159}]+/u;
/** Combining marks and variation selectors with no visible character before them to attach to. */
const STRAY_MARKS = /(^|\p{White_Space})\p{M}+/gu;
/** A character that shows: a letter, digit, punctuation or symbol (blank letters removed first). */
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}]/u;

const codePoint = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * The name to store and its lower-case extension; throws NameRefused with the reason otherwise.
 */
export function checkFileName(raw: string): { name: string; ext: string } {
  if (LONE_SURROGATE.test(raw)) throw new NameRefused('The file name is not valid text: rename the file and try again');
  let name = raw.normalize('NFC');
  if (CONTROL.test(name)) throw new NameRefused('The file name contains control characters (such as a line break): rename the file and try again');
  for (const match of name.matchAll(FORMAT)) {
    const c = match[0].codePointAt(0) ?? 0;
    const bidi = BIDI_CONTROLS[c];
    if (bidi) {
      throw new NameRefused(
        `The file name contains an invisible character (${codePoint(c)} ${bidi}) that changes how the name is displayed: rename the file and try again`,
      );
    }
    const before = name.slice(0, match.index);
    const after = name.slice(match.index + match[0].length);
    if (JOINERS.has(c) && LETTER_OR_MARK.test(before.slice(-2)) && LETTER_OR_MARK.test(after.slice(0, 2))) continue;
    const label = INVISIBLE_NAMES[c];
    throw new NameRefused(`The file name contains an invisible character (${codePoint(c)}${label ? ` ${label}` : ''}): rename the file and try again`);
  }
  name = name.split(/[\\/]/).pop() ?? '';
  if (name.length === 0) throw new NameRefused('The file has no name: give it a name with an extension, such as report.pdf');
  const lastDot = name.lastIndexOf('.');
  const stem = lastDot < 0 ? name : name.slice(0, lastDot);
  if (stem.length > 0 && !VISIBLE.test(stem.replace(BLANK_LETTERS, ''))) {
    throw new NameRefused('The file name is blank: it shows nothing before the extension (only spaces or invisible characters): give it a name, such as report.pdf');
  }
  name = name.replace(LEADING_BLANK_LETTERS, '').replace(BLANK_LETTERS, ' ').replace(STRAY_MARKS, '$1');
  if (name !== name.trim() || name.endsWith('.')) {
    throw new NameRefused('The file name starts or ends with a space, or ends with a dot: rename the file and try again');
  }
  if ([...name].length > MAX_NAME_LENGTH) throw new NameRefused(`The file name is longer than ${MAX_NAME_LENGTH} characters: shorten it and try again`);
  for (const match of name.matchAll(HIDDEN_EXTENSION)) {
    const hidden = (match[1] ?? '').toLowerCase();
    if (RUNNABLE.has(hidden)) {
      throw new NameRefused(`The file name hides a second extension (.${hidden} before "${match[0].slice(hidden.length + 1)}"): rename the file and try again`);
    }
  }
  const dot = name.lastIndexOf('.');
  if (dot <= 0) throw new NameRefused('The file name has no extension (such as .pdf or .txt): the type of a file is checked against it');
  return { name, ext: name.slice(dot + 1).toLowerCase() };
}
