import { type Static, Type } from '@sinclair/typebox';
import { PENDING_KEY_PREFIX, type ItemKey } from './keys';

/** The states of a file record (see `FileRecord.status`). */
const STATUSES = ['active', 'pending', 'verifying', 'deleting'] as const;

export interface FileRecord {
  userId: string;
  fileId: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  sensitive: boolean;
  /**
   * `active` once the object is verified and counted; `pending` while a direct upload is
   * outstanding; `verifying` while one `/complete` request checks it (see `claim`); `deleting`
   * while its owner's delete removes the object (still counted, no longer listed: see `beginDelete`).
   */
  status: (typeof STATUSES)[number];
  key: string;
  createdAt: string;
  /** For pending, verifying and deleting records: epoch seconds after which the sweep removes them. */
  expiresAt?: number;
  /** For verifying records: the token of the one `/complete` request allowed to act. */
  claim?: string;
  /**
   * For a resumable direct upload while it is pending or verifying: its S3 multipart upload (at
   * `key`) and the size of each of its parts but the last, in bytes. Absent on files.
   */
  uploadId?: string;
  partSize?: number;
  /**
   * Where the object lives now. Absent until the sensitive mover (or a restore) writes it: a file
   * without it is in the primary bucket, and a sensitive one is still on its way to the vault.
   * Owned by the mover and restore: the upload service's writes never set or remove it.
   */
  location?: FileLocation;
  /** When the mover verified the vault copy and removed the primary one (ISO 8601). Owned like `location`. */
  movedAt?: string;
}

/**
 * What the HTTP APIs show of a file, as a response schema (validation, leak filter and OpenAPI
 * document in one) with its type derived from it: the upload API's file (an upload's answer
 * leaves out `location`: `Type.Omit(FileView, ['location'])`), and backup-sync's restore answer
 * (with `userId` added).
 */
export const FileView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  contentType: Type.String(),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  sensitive: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  location: Type.Union([Type.Literal('primary'), Type.Literal('sensitive')], {
    description: 'Where the file is now: "sensitive" once it is in the KMS-encrypted vault; a sensitive file is "primary" while it moves there',
  }),
});
export type FileView = Static<typeof FileView>;

/** `primary`: the primary bucket (SSE-S3); `sensitive`: the KMS-encrypted vault. */
export type FileLocation = FileView['location'];

/** A record as the APIs show it (see `FileView`); `location` is `primary` until the mover (or a restore) says otherwise. */
export function fileView(r: FileRecord): FileView {
  return {
    id: r.fileId,
    name: r.name,
    size: r.size,
    contentType: r.contentType,
    sha256: r.sha256,
    sensitive: r.sensitive,
    location: r.location ?? 'primary',
    createdAt: r.createdAt,
  };
}

/** Attributes the sensitive mover (and a restore) write; the upload service's writes leave them alone. */
export const MOVER_FIELDS = ['location', 'movedAt'] as const;

const isStatus = (v: unknown): v is FileRecord['status'] => (STATUSES as readonly unknown[]).includes(v);
const isLocation = (v: unknown): v is FileLocation => v === 'primary' || v === 'sensitive';

/**
 * A record item of the files table as a record: a pending one's sort key (`#pending#<fileId>`)
 * turned back into its file id, every attribute read with its type (a string attribute that is
 * absent reads as ''; the optional ones stay absent). Throws for an item that is no file record
 * (no known `status`: the usage item, a reservation, an attribute set another writer made first).
 */
export function recordOf(item: Record<string, unknown>): FileRecord {
  const { status } = item;
  if (!isStatus(status)) throw new Error(`not a file record: ${String(item.userId)}/${String(item.fileId)}`);
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  const fileId = text(item.fileId);
  const record: FileRecord = {
    userId: text(item.userId),
    fileId: fileId.startsWith(PENDING_KEY_PREFIX) ? fileId.slice(PENDING_KEY_PREFIX.length) : fileId,
    name: text(item.name),
    size: Number(item.size ?? 0),
    contentType: text(item.contentType),
    sha256: text(item.sha256),
    sensitive: item.sensitive === true,
    status,
    key: text(item.key),
    createdAt: text(item.createdAt),
  };
  if (item.expiresAt !== undefined) record.expiresAt = Number(item.expiresAt);
  if (typeof item.claim === 'string') record.claim = item.claim;
  if (typeof item.uploadId === 'string') record.uploadId = item.uploadId;
  if (item.partSize !== undefined) record.partSize = Number(item.partSize);
  if (isLocation(item.location)) record.location = item.location;
  if (typeof item.movedAt === 'string') record.movedAt = item.movedAt;
  return record;
}

/** An `UpdateItem` of the files table without its condition: what `ownFieldsUpdate` builds. */
export interface RecordUpdate {
  TableName: string;
  Key: ItemKey;
  UpdateExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, unknown>;
}

/**
 * The `SET` of the upload service's own fields of `record` at its key (never the key itself, never
 * another writer's attributes: `MOVER_FIELDS`), in `table`. `#status` is always among the names,
 * for the caller's condition.
 */
export function ownFieldsUpdate(table: string, record: FileRecord): RecordUpdate {
  const { userId, fileId, ...rest } = record;
  const mover: readonly string[] = MOVER_FIELDS;
  const fields = Object.entries(rest).filter(([k, v]) => v !== undefined && !mover.includes(k));
  return {
    TableName: table,
    Key: { userId, fileId },
    UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :f${i}`).join(', ')}`,
    ExpressionAttributeNames: { '#status': 'status', ...Object.fromEntries(fields.map(([k], i) => [`#f${i}`, k])) },
    ExpressionAttributeValues: Object.fromEntries(fields.map(([, v], i) => [`:f${i}`, v])),
  };
}
