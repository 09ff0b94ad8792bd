/**
 * What the inspector asks of a file type: a check that starts from the file's first bytes, follows
 * the rest of the stream, and gives the final verdict at its end (before the upload completes).
 */
export interface ContentCheck {
  /** Bytes at the end of the file that `finish` needs to see (0: none). */
  readonly tailBytes: number;
  /** Sees every chunk after the first bytes, in order; may refuse at once (throws ContentRefused). */
  update(chunk: Buffer): void;
  /** The content type as far as the bytes seen so far tell (a text's charset may still change). */
  current(): string;
  /** The verdict at the end: the content type to record, or a refusal (throws ContentRefused). */
  finish(size: number, tail: Buffer): string;
}

/**
 * Why content was refused, as the rest of a sentence that starts with the file's name:
 * `"photo.jpg" ${reason}`. Written for the person who picked the file.
 */
export class ContentRefused extends Error {}
