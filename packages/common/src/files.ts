import {
  GetCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { type Static, Type } from '@sinclair/typebox';
import { isDependencyOutage } from './aws';
import { BackgroundRetries } from './background-retries';
import { cancellationReasons, isConditionFailed, isTransactionConflict } from './dynamo';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSha256Hex } from './s3-copy';
import type { Logger } from './logger';

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
  status: 'active' | 'pending' | 'verifying' | 'deleting';
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
const MOVER_FIELDS = ['location', 'movedAt'] as const;

/** The fields the upload service writes; any other attribute of a record belongs to another writer. */
type OwnFields = Omit<FileRecord, 'userId' | 'fileId' | (typeof MOVER_FIELDS)[number]>;

/** The per-user usage counter lives in the same partition under a key no file id can take. */
const USAGE = '#usage';
/**
 * Where a direct upload's record lives while it is pending or verifying: `#pending#<fileId>` in the
 * user's partition. The sort key sorts below every file id (`#` < `0`), so the listing (which reads
 * file ids from the top down) never reads a pending upload, however many there are; the record
 * moves to `<fileId>` in the transaction that makes it active. (Records written before this layout
 * sit at `<fileId>` with status pending: the sweep still finds and removes them.)
 */
export const PENDING_KEY_PREFIX = '#pending#';
const pendingKey = (userId: string, fileId: string) => ({ userId, fileId: `${PENDING_KEY_PREFIX}${fileId}` });

/** A stored item as a record: a pending one's sort key turned back into its file id. */
function asRecord(item: Record<string, unknown>): FileRecord {
  const fileId = String(item.fileId);
  return (fileId.startsWith(PENDING_KEY_PREFIX) ? { ...item, fileId: fileId.slice(PENDING_KEY_PREFIX.length) } : item) as unknown as FileRecord;
}

/** Reservations of streamed uploads: `#reservation#<id>` items in the owner's partition (never a file id). */
const RESERVATION = '#reservation#';
/**
 * Every change of the usage item adds 1 to this attribute, in the same write (or transaction) as
 * the change of the item it accounts for: the usage reconciliation rewrites the counters only if
 * nothing changed since it read them (`reconcileUsage`).
 */
const SEQ = 'usageSeq';

/**
 * Bytes a streamed upload holds of its owner's quota, and one file of their file count (even at
 * zero bytes): one item in the owner's partition, created
 * with the reservation and removed with its settlement or release (in the same transaction as the
 * usage change), kept alive by its upload (`renewReservation`) until `until`. One whose upload no
 * longer renews it (the process was killed) is released by the usage reconciliation.
 */
export interface Reservation {
  userId: string;
  id: string;
  bytes: number;
}

/** A user's usage counters: bytes and files stored, and bytes and files held by uploads under way. */
export interface UsageCounters {
  usedBytes: number;
  reservedBytes: number;
  usedFiles: number;
  reservedFiles: number;
}

/** One change of a user's usage counters (each defaults to 0); the committed sums follow. */
interface UsageDelta {
  usedBytes?: number;
  reservedBytes?: number;
  usedFiles?: number;
  reservedFiles?: number;
}

/** What one user's usage reconciliation found and did (`reconcileUsage`). */
export interface UsageReconciliation {
  userId: string;
  /** The counters before and after (bytes, and files of the file count). */
  before: UsageCounters;
  after: UsageCounters;
  /** Reservations whose upload no longer renewed them, released (each gave back its bytes and its one file). */
  releasedReservations: number;
  releasedBytes: number;
  /** True when the counters were rewritten (they differed from the records). */
  corrected: boolean;
}

/** An update of a user's usage item: what `settlement` builds. */
interface UsageUpdate {
  TableName: string;
  Key: { userId: string; fileId: string };
  UpdateExpression: string;
  ExpressionAttributeValues: Record<string, number>;
  ConditionExpression?: string;
}

type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];
type TransactRequest = ConstructorParameters<typeof TransactWriteCommand>[0];

/**
 * File metadata and per-user usage in DynamoDB. File ids are UUIDv7 (time-ordered), so a user's
 * partition read backwards lists the newest files first.
 *
 * Records are written with `UpdateItem ... SET` of the upload service's own fields only, never
 * replaced whole: other writers (the sensitive mover) add attributes of their own to the same
 * item, before or after the upload service writes it. A record counts as created once it has a
 * `status`.
 *
 * Bytes are counted in the user's usage item (`usedBytes`, `reservedBytes`, and their sum
 * `committedBytes` for the quota condition), and files the same way (`usedFiles`, `reservedFiles`,
 * `committedFiles` for the file-count condition): every reservation (a streamed upload's
 * reservation item, a direct upload's pending record) holds its bytes and one file, even at zero
 * bytes. Every change of the counters happens in one transaction with the change of the item it
 * accounts for (a record's state, a reservation item, a pending record) and adds 1 to `usageSeq`;
 * each such item change is conditional, so each reservation is settled or released exactly once
 * however many requests race for it. Therefore the counters can always be recomputed from the
 * partition: used = the sizes and the number of active (and deleting) records, reserved = the
 * reservation items plus the pending and verifying records (`reconcileUsage`). A release that fails for a reason a retry may
 * fix is retried in the background (R1); one that fails for good is left to the reconciliation.
 */
export class FileRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly log: Pick<Logger, 'warn' | 'error'>,
  ) {}

  /** Releases being retried after a DynamoDB outage (see `release`). */
  private readonly retries = new BackgroundRetries();

  /**
   * The record of `fileId` in whatever state (active, deleting, or a pending or verifying direct
   * upload), or undefined. An active file is one read; otherwise the pending place is read, then the
   * file's place once more (the upload may have become active between the two reads).
   */
  async get(userId: string, fileId: string): Promise<FileRecord | undefined> {
    const read = async (Key: { userId: string; fileId: string }) => {
      const out = await this.db.send(new GetCommand({ TableName: this.table, Key, ConsistentRead: true }));
      // An item another writer created before the upload service wrote its record is not a file yet.
      return out.Item?.status ? asRecord(out.Item) : undefined;
    };
    return (await read({ userId, fileId })) ?? (await read(pendingKey(userId, fileId))) ?? (await read({ userId, fileId }));
  }

  /**
   * The file's record once it is complete: active, with the SHA-256 the upload service computed.
   * An object event can arrive before the upload service has written the record, so it is read
   * again with backoff (`firstPauseMs`, doubled up to `maxPauseMs` between reads) for up to
   * `waitMs` milliseconds (0: one read). Undefined when it is still not complete by then.
   */
  async completeRecord(
    userId: string,
    fileId: string,
    wait: { waitMs: number; firstPauseMs: number; maxPauseMs: number },
  ): Promise<(FileRecord & { sha256: string }) | undefined> {
    const deadline = Date.now() + wait.waitMs;
    for (let pause = wait.firstPauseMs; ; pause = Math.min(pause * 2, wait.maxPauseMs)) {
      const record = await this.get(userId, fileId);
      if (record?.status === 'active' && isSha256Hex(record.sha256)) return record;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await sleep(Math.min(pause, left));
    }
  }

  /**
   * Active files, newest first: at most `limit` of them, and `next` (the last file id of the
   * page, to pass back as `after`) only when more files follow.
   */
  async list(userId: string, limit: number, after?: string): Promise<{ items: FileRecord[]; next?: string }> {
    const items: FileRecord[] = [];
    let start: Record<string, unknown> | undefined = after ? { userId, fileId: after } : undefined;
    // Non-active records are filtered out after DynamoDB counted them, so a page may need more
    // than one query; one item beyond the page tells whether another page exists.
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'userId = :u AND fileId >= :lo',
          FilterExpression: '#status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':u': userId, ':lo': '0', ':active': 'active' },
          ScanIndexForward: false,
          Limit: limit + 1 - items.length,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((out.Items ?? []) as FileRecord[]));
      start = out.LastEvaluatedKey;
    } while (start && items.length <= limit);
    const page = items.slice(0, limit);
    const last = page[page.length - 1];
    return items.length > limit && last ? { items: page, next: last.fileId } : { items: page };
  }

  /**
   * The user's unfinished resumable direct uploads (pending or verifying records with a multipart
   * upload), oldest first: a query of the pending place only (see `PENDING_KEY_PREFIX`).
   */
  async unfinishedUploads(userId: string): Promise<FileRecord[]> {
    const found: FileRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'userId = :u AND begins_with(fileId, :pending)',
          FilterExpression: '#status IN (:p, :v) AND attribute_exists(uploadId)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':u': userId, ':pending': PENDING_KEY_PREFIX, ':p': 'pending', ':v': 'verifying' },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      found.push(...(out.Items ?? []).map(asRecord));
      start = out.LastEvaluatedKey;
    } while (start);
    return found;
  }

  /** Pending or verifying direct uploads whose time is up: all of them (a scan: the sweep runs rarely), or one user's. */
  async expiredPending(nowSeconds: number, userId?: string): Promise<FileRecord[]> {
    const found: FileRecord[] = [];
    const filter = {
      FilterExpression: '#status IN (:pending, :verifying) AND expiresAt < :now',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':pending': 'pending', ':verifying': 'verifying', ':now': nowSeconds } as Record<string, unknown>,
    };
    let start: Record<string, unknown> | undefined;
    do {
      const page = { TableName: this.table, ...filter, ...(start ? { ExclusiveStartKey: start } : {}) };
      const out = userId
        ? await this.db.send(
            new QueryCommand({ ...page, KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ...filter.ExpressionAttributeValues, ':u': userId } }),
          )
        : await this.db.send(new ScanCommand(page));
      found.push(...(out.Items ?? []).map(asRecord));
      start = out.LastEvaluatedKey;
    } while (start);
    return found;
  }

  /**
   * Deleting records whose delete stopped half-way (its request died) and whose time is up: all of
   * them (a scan: the sweep runs rarely), or one user's. The sweep finishes them (`finishDelete`).
   */
  async expiredDeletes(nowSeconds: number, userId?: string): Promise<FileRecord[]> {
    const found: FileRecord[] = [];
    const values: Record<string, unknown> = { ':deleting': 'deleting', ':now': nowSeconds };
    let start: Record<string, unknown> | undefined;
    do {
      const page = {
        TableName: this.table,
        FilterExpression: '#status = :deleting AND expiresAt < :now',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: values,
        ...(start ? { ExclusiveStartKey: start } : {}),
      };
      const out = userId
        ? await this.db.send(new QueryCommand({ ...page, KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ...values, ':u': userId } }))
        : await this.db.send(new ScanCommand(page));
      found.push(...((out.Items ?? []) as FileRecord[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return found;
  }

  /**
   * The user's file counts: files stored, files held by reservations (streamed uploads under way
   * and pending direct uploads), and their sum, which the file-count quota bounds (see `reserve`).
   */
  async fileCounts(userId: string): Promise<{ usedFiles: number; reservedFiles: number; committedFiles: number }> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { userId, fileId: USAGE }, ConsistentRead: true }));
    const n = (k: string) => Number(out.Item?.[k] ?? 0);
    return { usedFiles: n('usedFiles'), reservedFiles: n('reservedFiles'), committedFiles: n('committedFiles') };
  }

  async usage(userId: string): Promise<{ usedBytes: number; reservedBytes: number }> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { userId, fileId: USAGE }, ConsistentRead: true }));
    return { usedBytes: Number(out.Item?.usedBytes ?? 0), reservedBytes: Number(out.Item?.reservedBytes ?? 0) };
  }

  /**
   * Reserves `bytes` of the user's quota and one file of their file count (FU-03) for a streamed
   * upload, held until `until` (epoch seconds; the upload renews it while it runs:
   * `renewReservation`). `committedBytes` (used + reserved) is kept as one number because DynamoDB
   * conditions cannot add: the condition compares it with quota - bytes, so parallel uploads can
   * never overshoot; `committedFiles` is kept the same way against `maxFiles` (no file-count limit
   * when it is omitted). The reservation item (its bytes and its one file) and the counters change
   * in one transaction. Undefined when the quota or the file count would be exceeded (`fileCounts`
   * tells which).
   */
  async reserve(userId: string, bytes: number, quota: number, until: number, maxFiles?: number): Promise<Reservation | undefined> {
    if (bytes > quota || (maxFiles !== undefined && maxFiles < 1)) return undefined;
    const reservation: Reservation = { userId, id: randomUUID(), bytes };
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.table,
          Item: { userId, fileId: `${RESERVATION}${reservation.id}`, bytes, files: 1, until, createdAt: new Date().toISOString() },
          ConditionExpression: 'attribute_not_exists(fileId)',
        },
      },
      { Update: this.reservation(userId, bytes, quota, maxFiles) },
    ];
    for (let attempt = 1; ; attempt += 1) {
      // A transaction with a ClientRequestToken: the SDK's retry after a lost answer must not
      // reserve the bytes twice. A cancelled attempt applied nothing: a new token.
      const request = { ClientRequestToken: randomUUID(), TransactItems: items };
      try {
        await this.db.send(new TransactWriteCommand(request));
        return reservation;
      } catch (err) {
        if (isConditionFailed(err)) return undefined;
        // Another transaction on the user's usage item at that moment (a parallel upload): again.
        if (isTransactionConflict(err) && attempt < 5) continue;
        if (isDependencyOutage(err)) this.undoUnanswered(request, reservation);
        throw err;
      }
    }
  }

  /**
   * A reservation whose answer was lost (DynamoDB unreachable, a reset connection) may have been
   * made. In the background: repeat it (its token makes it count once, whether or not the first
   * one landed), then release it, each retried through the outage (R1).
   */
  private undoUnanswered(request: ConstructorParameters<typeof TransactWriteCommand>[0], reservation: Reservation): void {
    const usage = { key: { userId: reservation.userId, fileId: USAGE }, reserved: reservation.bytes };
    void this.retries.run(this.log, 'undoing a quota reservation whose answer was lost', { usage }, async () => {
      try {
        await this.db.send(new TransactWriteCommand(request));
      } catch (err) {
        if (isConditionFailed(err)) return; // it was never made, and cannot be now
        throw err;
      }
      await this.releaseOnce(reservation);
    });
  }

  /**
   * Keeps a streamed upload's reservation alive until `until` (epoch seconds). False when it is
   * gone (released: the upload was silent for longer than its lease).
   */
  async renewReservation(reservation: Reservation, until: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { userId: reservation.userId, fileId: `${RESERVATION}${reservation.id}` },
          UpdateExpression: 'SET #until = :until',
          ConditionExpression: 'attribute_exists(fileId) AND #until < :until',
          ExpressionAttributeNames: { '#until': 'until' },
          ExpressionAttributeValues: { ':until': until },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Gives a reservation back unused, exactly once (the reservation item is removed in the same
   * transaction; a second release finds nothing to do). Never throws: a failure a retry may fix is
   * retried in the background (R1), one for good is logged (the reconciliation repairs it).
   */
  async release(reservation: Reservation): Promise<void> {
    const usage = { key: { userId: reservation.userId, fileId: USAGE }, reservation: reservation.id, reserved: reservation.bytes };
    await this.retries.run(this.log, 'a usage counter update', { usage }, () => this.releaseOnce(reservation));
  }

  private async releaseOnce(reservation: Reservation, condition?: { expiredBefore: number }): Promise<boolean> {
    return this.transact([
      {
        Delete: {
          TableName: this.table,
          Key: { userId: reservation.userId, fileId: `${RESERVATION}${reservation.id}` },
          ...(condition
            ? { ConditionExpression: '#until < :now', ExpressionAttributeNames: { '#until': 'until' }, ExpressionAttributeValues: { ':now': condition.expiredBefore } }
            : { ConditionExpression: 'attribute_exists(fileId)' }),
        },
      },
      { Update: this.settlement(reservation.userId, reservation.bytes, 0, false) },
    ]);
  }

  /**
   * Waits up to `withinMs` for the usage updates still being retried in the background; gives up
   * (and logs) the rest (see `BackgroundRetries.settled`): for a graceful shutdown, and for tests.
   */
  async settled(withinMs: number): Promise<void> {
    await this.retries.settled(withinMs);
  }

  /**
   * Creates a pending record (a direct upload waiting for its bytes) in the pending place (see
   * `PENDING_KEY_PREFIX`) and reserves its size of the user's `quota` and one file of `maxFiles`
   * (FU-03; no file-count limit when omitted), in one transaction: the record is the reservation.
   * False (nothing changed) when the quota or the file count would be exceeded (`fileCounts` tells
   * which) or the record exists.
   */
  async createPending(record: FileRecord, quota: number, maxFiles?: number): Promise<boolean> {
    if (record.size > quota || (maxFiles !== undefined && maxFiles < 1)) return false;
    const create = this.setOwnFields(record);
    return this.transact([
      { Update: { ...create, Key: pendingKey(record.userId, record.fileId), ConditionExpression: 'attribute_not_exists(#status)' } },
      { Update: this.reservation(record.userId, record.size, quota, maxFiles) },
    ]);
  }

  /**
   * Creates an active record for a streamed upload and turns its reservation into usage of
   * `record.size` bytes, in one transaction. False (and nothing changed) when a record with this
   * id already exists. A reservation already released (the upload was silent for longer than its
   * lease and the reconciliation gave the bytes and the file back) no longer counts: the file's
   * size and the file are added to the usage on their own. `reserved` 0: no reservation (tools and
   * tests). A transaction that got no answer through a DynamoDB outage is undone in the background
   * (`undoUnansweredCreate`), so no record outlives the upload that failed; the caller gives the
   * reservation back.
   */
  async createActive(record: FileRecord, reserved: Reservation | 0): Promise<boolean> {
    const create: TransactItem = { Update: { ...this.setOwnFields(record), ConditionExpression: 'attribute_not_exists(#status)' } };
    const unreserved: TransactItem = { Update: this.usageChange(record.userId, { usedBytes: record.size, usedFiles: 1 }) };
    const unanswered = (request: TransactRequest) => this.undoUnansweredCreate(request, record);
    if (reserved === 0) return this.transact([create, unreserved], { unanswered });
    try {
      return await this.transact(
        [
          create,
          { Delete: { TableName: this.table, Key: { userId: record.userId, fileId: `${RESERVATION}${reserved.id}` }, ConditionExpression: 'attribute_exists(fileId)' } },
          { Update: this.settlement(record.userId, reserved.bytes, record.size, true) },
        ],
        { throwOn: 1, unanswered },
      );
    } catch (err) {
      if (!(err instanceof ConditionOn)) throw err;
      this.log.warn({ userId: record.userId, reservation: reserved.id }, 'an upload settled after its reservation was released (its lease ran out)');
      return this.transact([create, unreserved], { unanswered });
    }
  }

  /**
   * A record transaction whose answer was lost may have landed, and the failing upload removes
   * its object. In the background, through the outage: repeat it under its token (it then counts
   * once, whether or not the first one landed), then delete the record and take its size off the
   * usage in one transaction. A repeat refused by a condition never landed and cannot now (the
   * caller's release has the reservation); one cancelled by a conflict had not landed either.
   */
  private undoUnansweredCreate(request: TransactRequest, record: FileRecord): void {
    const context = { file: { userId: record.userId, fileId: record.fileId }, size: record.size };
    let repeat = request;
    let applied = false;
    void this.retries.run(this.log, 'undoing a file record whose answer was lost', context, async () => {
      for (let attempt = 1; !applied; attempt += 1) {
        try {
          await this.db.send(new TransactWriteCommand(repeat));
          applied = true;
        } catch (err) {
          if (isConditionFailed(err)) return;
          if (!isTransactionConflict(err) || attempt >= 8) throw err;
          repeat = { ...repeat, ClientRequestToken: randomUUID() };
        }
      }
      await this.transact([
        {
          Delete: {
            TableName: this.table,
            Key: { userId: record.userId, fileId: record.fileId },
            ConditionExpression: '#status = :active AND sha256 = :sha256',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':active': 'active', ':sha256': record.sha256 },
          },
        },
        { Update: this.usageChange(record.userId, { usedBytes: -record.size, usedFiles: -1 }) },
      ]);
    });
  }

  /**
   * The one `/complete` allowed to act takes the pending record (or a verifying one whose claim
   * ran out: its request died). Returns the claim token, or undefined when another request holds
   * the record or it is no longer pending.
   */
  async claim(userId: string, fileId: string, leaseSeconds: number, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string | undefined> {
    const claim = randomUUID();
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: pendingKey(userId, fileId),
          UpdateExpression: 'SET #status = :verifying, claim = :claim, expiresAt = :until',
          ConditionExpression: '#status = :pending OR (#status = :verifying AND expiresAt < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':verifying': 'verifying',
            ':pending': 'pending',
            ':claim': claim,
            ':until': nowSeconds + leaseSeconds,
            ':now': nowSeconds,
          },
        }),
      );
      return claim;
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  /**
   * Takes a pending or verifying record over whatever claim holds it and however long its lease
   * still runs: a user's cancel wins over a `/complete` under way, whose later claim-conditioned
   * steps (`activateClaimed`, `unclaim`, `discard`) then find their claim gone. The new claim, or
   * undefined when the record is neither pending nor verifying (a file by now, or gone).
   */
  async takeOver(userId: string, fileId: string, leaseSeconds: number, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string | undefined> {
    const claim = randomUUID();
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: pendingKey(userId, fileId),
          UpdateExpression: 'SET #status = :verifying, claim = :claim, expiresAt = :until',
          ConditionExpression: '#status IN (:pending, :verifying)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':verifying': 'verifying', ':pending': 'pending', ':claim': claim, ':until': nowSeconds + leaseSeconds },
        }),
      );
      return claim;
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  /**
   * Hands a claimed record back (pending again, until `expiresAt`), e.g. when nothing was uploaded
   * yet. False when the claim no longer holds (a cancel or the sweep took the record).
   */
  async unclaim(record: FileRecord, claim: string, expiresAt: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: pendingKey(record.userId, record.fileId),
          UpdateExpression: 'SET #status = :pending, expiresAt = :until REMOVE claim',
          ConditionExpression: '#status = :verifying AND claim = :claim',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':verifying': 'verifying', ':claim': claim, ':until': expiresAt },
        }),
      );
      return true;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      return false;
    }
  }

  /**
   * Makes a claimed direct upload a file, in one transaction: the pending record is removed (only
   * if the claim still holds), `record` (active) is written in the file's place, and the
   * reservation of `reserved` bytes and one file becomes usage of `record.size` and one file.
   * False when the claim no longer holds (the sweep took the record); throws when a record already
   * sits in the file's place (nothing changed).
   */
  async activateClaimed(record: FileRecord, claim: string, reserved: number): Promise<boolean> {
    try {
      return await this.transact(
        [
          {
            Delete: {
              TableName: this.table,
              Key: pendingKey(record.userId, record.fileId),
              ConditionExpression: '#status = :verifying AND claim = :claim',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: { ':verifying': 'verifying', ':claim': claim },
            },
          },
          { Update: { ...this.setOwnFields(record), ConditionExpression: 'attribute_not_exists(#status)' } },
          { Update: this.settlement(record.userId, reserved, record.size, true) },
        ],
        { throwOn: 1 },
      );
    } catch (err) {
      if (err instanceof ConditionOn) throw new Error(`a record for ${record.key} already exists`, { cause: err });
      throw err;
    }
  }

  /**
   * Removes a record that never became a file and releases its reservation, its bytes and its
   * file (one transaction): a
   * claimed record only by its claim holder; an unclaimed one only once `expiresAt` is before
   * `expiredBefore` (the sweep). False when the condition no longer holds (someone else acted).
   */
  async discard(record: FileRecord, by: { claim: string } | { expiredBefore: number }): Promise<boolean> {
    const condition =
      'claim' in by
        ? { ConditionExpression: '#status = :verifying AND claim = :claim', values: { ':verifying': 'verifying', ':claim': by.claim } }
        : {
            ConditionExpression: '#status IN (:pending, :verifying) AND expiresAt < :now',
            values: { ':pending': 'pending', ':verifying': 'verifying', ':now': by.expiredBefore },
          };
    const remove = (Key: { userId: string; fileId: string }) =>
      this.transact([
        {
          Delete: {
            TableName: this.table,
            Key,
            ConditionExpression: condition.ConditionExpression,
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: condition.values,
          },
        },
        { Update: this.settlement(record.userId, record.size, 0, false) },
      ]);
    if (await remove(pendingKey(record.userId, record.fileId))) return true;
    // A pending record written before pending records had a place of their own (see PENDING_KEY_PREFIX).
    return 'expiredBefore' in by && remove({ userId: record.userId, fileId: record.fileId });
  }

  /**
   * The first step of an owner's delete: the active record becomes `deleting` until `until` (epoch
   * seconds). From then on the file is no longer listed or downloadable, a restore of it waits or
   * is refused, and only `finishDelete` (after the object is gone) removes the record and frees
   * its bytes. False when the record is not active (deleted or being deleted already).
   */
  async beginDelete(record: FileRecord, until: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { userId: record.userId, fileId: record.fileId },
          UpdateExpression: 'SET #status = :deleting, expiresAt = :until',
          ConditionExpression: '#status = :active AND sha256 = :sha256',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':deleting': 'deleting', ':active': 'active', ':until': until, ':sha256': record.sha256 },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * The last step of a delete, once the object is gone: the deleting record is removed and its
   * bytes and its file freed, in one transaction. False when it was already gone.
   */
  async finishDelete(record: FileRecord): Promise<boolean> {
    return this.transact([
      {
        Delete: {
          TableName: this.table,
          Key: { userId: record.userId, fileId: record.fileId },
          ConditionExpression: '#status = :deleting',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':deleting': 'deleting' },
        },
      },
      { Update: this.usageChange(record.userId, { usedBytes: -record.size, usedFiles: -1 }) },
    ]);
  }

  /**
   * The sensitive mover's write: only its own attributes, and only on the record of the content it
   * verified (same SHA-256). False when there is no such record (the file was deleted meanwhile).
   */
  async setLocation(userId: string, fileId: string, location: FileLocation, sha256: string, at: Date): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { userId, fileId },
          UpdateExpression: 'SET #location = :location, movedAt = :at',
          ConditionExpression: 'attribute_exists(#status) AND sha256 = :sha256',
          ExpressionAttributeNames: { '#location': 'location', '#status': 'status' },
          ExpressionAttributeValues: { ':location': location, ':at': at.toISOString(), ':sha256': sha256 },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Puts back the record of a restored file (an active record, `location` included) and counts its
   * size and the file against the owner's quota and file count, in one transaction: nothing
   * happens when a record exists already (false), so a restore that runs twice counts once. A
   * restore may take a user over the quota or the file count; new uploads are then refused until
   * they delete.
   */
  async restore(record: FileRecord): Promise<boolean> {
    const own = this.setOwnFields(record);
    const mover = MOVER_FIELDS.filter((f) => record[f] !== undefined);
    const update = {
      ...own,
      UpdateExpression: [own.UpdateExpression, ...mover.map((f) => `#${f} = :${f}`)].join(', '),
      ConditionExpression: 'attribute_not_exists(#status)',
      ExpressionAttributeNames: { ...own.ExpressionAttributeNames, ...Object.fromEntries(mover.map((f) => [`#${f}`, f])) },
      ExpressionAttributeValues: { ...own.ExpressionAttributeValues, ...Object.fromEntries(mover.map((f) => [`:${f}`, record[f]])) },
    };
    const usage = this.usageChange(record.userId, { usedBytes: record.size, usedFiles: 1 });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.db.send(new TransactWriteCommand({ TransactItems: [{ Update: update }, { Update: usage }] }));
        return true;
      } catch (err) {
        if (isConditionFailed(err)) return false;
        // Another transaction on the same items at that moment (another restore?): try again.
        if (!isTransactionConflict(err) || attempt >= 5) throw err;
      }
    }
  }

  /** Every user who has a usage item (a scan of the table: for the usage reconciliation, which runs rarely). */
  async *usersWithUsage(): AsyncGenerator<string> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'fileId = :usage',
          ProjectionExpression: 'userId',
          ExpressionAttributeValues: { ':usage': USAGE },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of out.Items ?? []) yield String(item.userId);
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /**
   * Recomputes one user's usage from the partition (the usage reconciliation). First releases the
   * reservations whose upload stopped renewing them before `nowSeconds` (its process was killed),
   * each in one conditional transaction (a renewal that came meanwhile keeps it), its bytes and its
   * file. Then: used = the sizes and the number of the active and deleting records, reserved = the
   * live reservations (their bytes, one file each) plus the pending and verifying direct uploads
   * (their sizes, one file each; the sweep releases those once their time is up). The counters
   * are rewritten only when they differ, and only if `usageSeq` is still what it was when they
   * were read: any settlement, release or reservation that landed meanwhile changed it, and the
   * computation starts again. Uploads may run throughout.
   */
  async reconcileUsage(userId: string, nowSeconds: number): Promise<UsageReconciliation> {
    let releasedReservations = 0;
    let releasedBytes = 0;
    let first: UsageCounters | undefined;
    for (let attempt = 1; ; attempt += 1) {
      const usageItem = (await this.db.send(new GetCommand({ TableName: this.table, Key: { userId, fileId: USAGE }, ConsistentRead: true }))).Item;
      const counter = (k: keyof UsageCounters) => Number(usageItem?.[k] ?? 0);
      const before: UsageCounters = { usedBytes: counter('usedBytes'), reservedBytes: counter('reservedBytes'), usedFiles: counter('usedFiles'), reservedFiles: counter('reservedFiles') };
      first ??= before;
      const seq = usageItem?.[SEQ] as number | undefined;
      const after: UsageCounters = { usedBytes: 0, reservedBytes: 0, usedFiles: 0, reservedFiles: 0 };
      let released = false;
      for await (const item of this.partition(userId)) {
        const fileId = String(item.fileId);
        if (fileId.startsWith(RESERVATION)) {
          const reservation = { userId, id: fileId.slice(RESERVATION.length), bytes: Number(item.bytes ?? 0) };
          if (Number(item.until ?? 0) < nowSeconds && (await this.releaseOnce(reservation, { expiredBefore: nowSeconds }))) {
            releasedReservations += 1;
            releasedBytes += reservation.bytes;
            released = true;
          } else {
            // Every reservation holds one file (one made before the file count too: its release gives one back).
            after.reservedBytes += reservation.bytes;
            after.reservedFiles += 1;
          }
        } else if (item.status === 'active' || item.status === 'deleting') {
          after.usedBytes += Number(item.size ?? 0);
          after.usedFiles += 1;
        } else if (item.status === 'pending' || item.status === 'verifying') {
          // Under #pending#<id>, or at the file id when written before pending records moved.
          after.reservedBytes += Number(item.size ?? 0);
          after.reservedFiles += 1;
        }
      }
      const { usedBytes, reservedBytes, usedFiles, reservedFiles } = after;
      const result = (corrected: boolean): UsageReconciliation => ({ userId, before: first as UsageCounters, after, releasedReservations, releasedBytes, corrected });
      // A release changed the counters: read them again before comparing.
      if (released) continue;
      const same = (Object.keys(after) as (keyof UsageCounters)[]).every((k) => before[k] === after[k]);
      if (
        usageItem &&
        same &&
        Number(usageItem.committedBytes ?? 0) === usedBytes + reservedBytes &&
        Number(usageItem.committedFiles ?? 0) === usedFiles + reservedFiles
      ) {
        return result(false);
      }
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { userId, fileId: USAGE },
            UpdateExpression:
              `SET usedBytes = :used, reservedBytes = :reserved, committedBytes = :committed, ` +
              `usedFiles = :usedFiles, reservedFiles = :reservedFiles, committedFiles = :committedFiles, ${SEQ} = :next`,
            ConditionExpression: seq === undefined ? `attribute_not_exists(${SEQ})` : `${SEQ} = :seq`,
            ExpressionAttributeValues: {
              ':used': usedBytes,
              ':reserved': reservedBytes,
              ':committed': usedBytes + reservedBytes,
              ':usedFiles': usedFiles,
              ':reservedFiles': reservedFiles,
              ':committedFiles': usedFiles + reservedFiles,
              ':next': (seq ?? 0) + 1,
              ...(seq === undefined ? {} : { ':seq': seq }),
            },
          }),
        );
        if ((Object.keys(after) as (keyof UsageCounters)[]).some((k) => (first as UsageCounters)[k] !== after[k])) {
          this.log.warn({ userId, before: first, after }, 'usage reconciliation corrected the counters');
        }
        return result(true);
      } catch (err) {
        // Something changed the counters since they were read: compute again.
        if (!isConditionFailed(err) || attempt >= 10) throw err;
      }
    }
  }

  /** Every item of a user's partition (records, reservations, the usage item), strongly consistent. */
  private async *partition(userId: string): AsyncGenerator<Record<string, unknown>> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'userId = :u',
          ExpressionAttributeValues: { ':u': userId },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      yield* out.Items ?? [];
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /** `SET` of the upload service's own fields (never the key, never another writer's attributes). */
  private setOwnFields(record: FileRecord) {
    const { userId, fileId, ...rest } = record;
    const own: Record<string, unknown> = { ...rest };
    for (const f of MOVER_FIELDS) delete own[f];
    const fields = Object.entries(own as OwnFields).filter(([, v]) => v !== undefined);
    return {
      TableName: this.table,
      Key: { userId, fileId },
      UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :f${i}`).join(', ')}`,
      ExpressionAttributeNames: { '#status': 'status', ...Object.fromEntries(fields.map(([k], i) => [`#f${i}`, k])) },
      ExpressionAttributeValues: Object.fromEntries(fields.map(([, v], i) => [`:f${i}`, v])) as Record<string, unknown>,
    };
  }

  /**
   * Turns a reservation of `reserved` bytes and one file into usage of `actual` bytes and, when
   * `stored`, one file (otherwise a release: the bytes and the file are given back).
   */
  private settlement(userId: string, reserved: number, actual: number, stored: boolean): UsageUpdate {
    return this.usageChange(userId, { reservedBytes: -reserved, usedBytes: actual, reservedFiles: -1, usedFiles: stored ? 1 : 0 });
  }

  /**
   * A new reservation of `bytes` and one file: refused (the transaction's condition fails) when the
   * committed bytes would exceed `quota` or, with `maxFiles`, the committed files would exceed it.
   */
  private reservation(userId: string, bytes: number, quota: number, maxFiles?: number): UsageUpdate {
    const files = maxFiles === undefined ? '' : ' AND (attribute_not_exists(committedFiles) OR committedFiles <= :maxFiles)';
    const change = this.usageChange(userId, { reservedBytes: bytes, reservedFiles: 1 });
    return {
      ...change,
      ConditionExpression: `(attribute_not_exists(committedBytes) OR committedBytes <= :max)${files}`,
      ExpressionAttributeValues: { ...change.ExpressionAttributeValues, ':max': quota - bytes, ...(maxFiles === undefined ? {} : { ':maxFiles': maxFiles - 1 }) },
    };
  }

  /**
   * One change of the user's usage counters (bytes and files, used and reserved, and the committed
   * sums the quota conditions compare), adding 1 to `usageSeq`.
   */
  private usageChange(userId: string, delta: UsageDelta): UsageUpdate {
    const { usedBytes = 0, reservedBytes = 0, usedFiles = 0, reservedFiles = 0 } = delta;
    return {
      TableName: this.table,
      Key: { userId, fileId: USAGE },
      UpdateExpression:
        `ADD usedBytes :usedBytes, reservedBytes :reservedBytes, committedBytes :committedBytes, ` +
        `usedFiles :usedFiles, reservedFiles :reservedFiles, committedFiles :committedFiles, ${SEQ} :one`,
      ExpressionAttributeValues: {
        ':usedBytes': usedBytes,
        ':reservedBytes': reservedBytes,
        ':committedBytes': usedBytes + reservedBytes,
        ':usedFiles': usedFiles,
        ':reservedFiles': reservedFiles,
        ':committedFiles': usedFiles + reservedFiles,
        ':one': 1,
      },
    };
  }

  /**
   * One transaction (a conditional change of an item and the usage change that goes with it),
   * with a `ClientRequestToken` (an SDK retry after a lost answer does not apply it twice),
   * repeated when it collided with another transaction on the same items. True when it was made;
   * false when a condition failed (nothing changed). With `throwOn`, a failed condition of that
   * item alone throws `ConditionOn` instead, so the caller can tell which condition failed. With
   * `unanswered`, a transaction that got no answer (a dependency outage) is handed to it first.
   */
  private async transact(items: TransactItem[], opts: { throwOn?: number; unanswered?: (request: TransactRequest) => void } = {}): Promise<boolean> {
    const request = { ClientRequestToken: randomUUID(), TransactItems: items };
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.db.send(new TransactWriteCommand(request));
        return true;
      } catch (err) {
        if (isConditionFailed(err)) {
          const reasons = cancellationReasons(err) ?? [];
          const failed = reasons.flatMap((r, i) => (r === 'ConditionalCheckFailed' ? [i] : []));
          if (opts.throwOn !== undefined && failed.length === 1 && failed[0] === opts.throwOn) throw new ConditionOn(opts.throwOn);
          return false;
        }
        if (isDependencyOutage(err)) opts.unanswered?.({ ...request });
        if (!isTransactionConflict(err) || attempt >= 8) throw err;
        // A cancelled transaction applied nothing: the next attempt gets a token of its own.
        request.ClientRequestToken = randomUUID();
      }
    }
  }
}

/** The condition of one item of a transaction failed (see `transact`'s `throwOn`). */
class ConditionOn extends Error {
  constructor(readonly index: number) {
    super(`the condition of transaction item ${index} failed`);
    this.name = 'ConditionOn';
  }
}
