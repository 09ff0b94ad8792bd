import type { Tag } from '@aws-sdk/client-s3';

/**
 * A file object's tags, the one place they are written. `sensitive` (`true` / `false`) is set in
 * the request that creates the object, since the sensitive mover reads it on the creation event;
 * `sha256` (the file's digest, 64 hex characters) is added once the bytes are complete. S3 takes
 * tags in three formats (a query string, a TagSet, an XML form field): each has a writer below,
 * all from the same record.
 */
export interface FileTags {
  sensitive: boolean;
  /** Hex SHA-256 of the bytes; absent while they are still arriving. */
  sha256?: string;
}

/** A file's tags as S3 stores them (strings), in their fixed order: `sensitive`, then `sha256` when known. */
export function fileTags(tags: FileTags): Record<string, string> {
  const out: Record<string, string> = { sensitive: String(tags.sensitive) };
  if (tags.sha256 !== undefined) out.sha256 = tags.sha256;
  return out;
}

/**
 * Tags as a URL query string (`sensitive=true&sha256=...`): the `Tagging` parameter (header
 * `x-amz-tagging`) of PutObject, CreateMultipartUpload and CopyObject.
 */
export function taggingQuery(tags: Record<string, string>): string {
  return new URLSearchParams(tags).toString();
}

/** Tags as PutObjectTagging's `TagSet`. */
export function tagSet(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

const xmlEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Tags as the XML document a presigned POST's `tagging` form field holds. */
export function taggingXml(tags: Record<string, string>): string {
  const items = Object.entries(tags).map(([key, value]) => `<Tag><Key>${xmlEscape(key)}</Key><Value>${xmlEscape(value)}</Value></Tag>`);
  return `<Tagging><TagSet>${items.join('')}</TagSet></Tagging>`;
}

/** GetObjectTagging's `TagSet` as a record (key -> value). */
export function tagsOf(set: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((set ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

/** Whether an object's tags mark it sensitive (`sensitive=true`, in any case). */
export function isTaggedSensitive(tags: Record<string, string>): boolean {
  return tags.sensitive?.toLowerCase() === 'true';
}
