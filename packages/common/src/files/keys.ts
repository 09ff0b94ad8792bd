/**
 * Where a file lives: its object keys in S3 and the sort keys of the items of a user's partition
 * in the files table (hash key `userId`, range key `fileId`). The one place these layouts are
 * written; everything else builds and parses keys through these functions.
 */

/** Only objects under this prefix are files (`users/{userId}/{fileId}`); the event wiring filters on it. */
export const FILE_KEY_PREFIX = 'users/';

/**
 * Direct uploads are posted here (`incoming/{userId}/{fileId}`), never a file: `/complete` copies
 * the verified bytes to the file key. The primary bucket notifies the mover of these keys too, so
 * bytes posted after `/complete` are removed on arrival.
 */
export const STAGING_KEY_PREFIX = 'incoming/';

/** The object key of a file: `users/{userId}/{fileId}` (never a name the client chose). */
export const fileKey = (userId: string, fileId: string): string => `${FILE_KEY_PREFIX}${userId}/${fileId}`;

/** The object key a direct upload is posted to before it is verified: `incoming/{userId}/{fileId}`. */
export const stagingKey = (userId: string, fileId: string): string => `${STAGING_KEY_PREFIX}${userId}/${fileId}`;

/** `{prefix}{userId}/{fileId}` split into its user and file, or undefined for any other key. */
function parseKey(prefix: string, key: string): { userId: string; fileId: string } | undefined {
  const parts = key.split('/');
  if (parts.length !== 3 || `${parts[0]}/` !== prefix || !parts[1] || !parts[2]) return undefined;
  return { userId: parts[1], fileId: parts[2] };
}

/** The user and file a file object's key names, or undefined for any other key. */
export function parseFileKey(key: string): { userId: string; fileId: string } | undefined {
  return parseKey(FILE_KEY_PREFIX, key);
}

/** The user and upload a staging key names, or undefined for any other key. */
export function parseStagingKey(key: string): { userId: string; fileId: string } | undefined {
  return parseKey(STAGING_KEY_PREFIX, key);
}

/** The key of an item in the files table: the user's partition and the item's sort key. */
export interface ItemKey {
  userId: string;
  fileId: string;
}

/**
 * Where a direct upload's record lives while it is pending or verifying: `#pending#<fileId>` in the
 * user's partition. The sort key sorts below every file id (`#` < `0`), so the listing (which reads
 * file ids from the top down) never reads a pending upload, however many there are; the record
 * moves to `<fileId>` in the transaction that makes it active. (Records written before this layout
 * sit at `<fileId>` with status pending: the sweep still finds and removes them.)
 */
export const PENDING_KEY_PREFIX = '#pending#';

/** The key of a direct upload's record while it is pending or verifying (see `PENDING_KEY_PREFIX`). */
export const pendingKey = (userId: string, fileId: string): ItemKey => ({ userId, fileId: `${PENDING_KEY_PREFIX}${fileId}` });

/** The per-user usage counters live in the user's partition under a sort key no file id can take. */
export const USAGE_SORT_KEY = '#usage';

/** The key of a user's usage item. */
export const usageKey = (userId: string): ItemKey => ({ userId, fileId: USAGE_SORT_KEY });

/** Reservations of streamed uploads: `#reservation#<id>` items in the owner's partition (never a file id). */
export const RESERVATION_KEY_PREFIX = '#reservation#';

/** The key of a streamed upload's reservation item. */
export const reservationKey = (userId: string, id: string): ItemKey => ({ userId, fileId: `${RESERVATION_KEY_PREFIX}${id}` });
