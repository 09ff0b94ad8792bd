import {
  GetCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { isConditionFailed, StorageUnavailable } from '@scs/common';
import { randomUUID } from 'node:crypto';

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
   * outstanding; `verifying` while one `/complete` request checks it (see `claim`).
   */
  status: 'active' | 'pending' | 'verifying';
  key: string;
  createdAt: string;
  /** For pending and verifying records: epoch seconds after which the sweep removes them. */
  expiresAt?: number;
  /** For verifying records: the token of the one `/complete` request allowed to act. */
  claim?: string;
}

/** The fields the upload service writes; any other attribute of a record belongs to another writer. */
type OwnFields = Omit<FileRecord, 'userId' | 'fileId'>;

/** The per-user usage counter lives in the same partition under a key no file id can take. */
const USAGE = '#usage';

/** How often a transaction cancelled only by a concurrent write to the same items is retried. */
const TRANSACTION_ATTEMPTS = 5;

type TransactItems = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>;

/**
 * File metadata and per-user usage in DynamoDB. File ids are UUIDv7 (time-ordered), so a user's
 * partition read backwards lists the newest files first.
 *
 * Records are written with `UpdateItem ... SET` of the upload service's own fields only, never
 * replaced whole: other writers (the sensitive mover) add attributes of their own to the same
 * item, before or after the upload service writes it. A record counts as created once it has a
 * `status`. Every change that moves bytes between "reserved" and "used" is one transaction with
 * the record's state change, so a quota reservation is settled or released exactly once.
 */
export class FileRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(userId: string, fileId: string): Promise<FileRecord | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { userId, fileId }, ConsistentRead: true }));
    const item = out.Item as FileRecord | undefined;
    // An item another writer created before the upload service wrote its record is not a file yet.
    return item?.status ? item : undefined;
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

  /** Pending or verifying direct uploads whose time is up (a scan: the sweep runs rarely). */
  async expiredPending(nowSeconds: number): Promise<FileRecord[]> {
    const found: FileRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: '#status IN (:pending, :verifying) AND expiresAt < :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':verifying': 'verifying', ':now': nowSeconds },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      found.push(...((out.Items ?? []) as FileRecord[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return found;
  }

  async usage(userId: string): Promise<{ usedBytes: number; reservedBytes: number }> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { userId, fileId: USAGE }, ConsistentRead: true }));
    return { usedBytes: Number(out.Item?.usedBytes ?? 0), reservedBytes: Number(out.Item?.reservedBytes ?? 0) };
  }

  /**
   * Reserves `bytes` of the user's quota (FU-03). `committedBytes` (used + reserved) is kept as one
   * number because DynamoDB conditions cannot add: the condition compares it with quota - bytes,
   * so parallel uploads can never overshoot. False when the quota would be exceeded.
   */
  async reserve(userId: string, bytes: number, quota: number): Promise<boolean> {
    if (bytes > quota) return false;
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { userId, fileId: USAGE },
          UpdateExpression: 'ADD reservedBytes :n, committedBytes :n',
          ConditionExpression: 'attribute_not_exists(committedBytes) OR committedBytes <= :max',
          ExpressionAttributeValues: { ':n': bytes, ':max': quota - bytes },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /** Gives a reservation back unused. */
  async release(userId: string, reserved: number): Promise<void> {
    await this.db.send(new UpdateCommand(this.settlement(userId, reserved, 0)));
  }

  /** Creates a pending record (a direct upload waiting for its bytes); false when the record exists. */
  async createPending(record: FileRecord): Promise<boolean> {
    try {
      await this.db.send(new UpdateCommand({ ...this.setOwnFields(record), ConditionExpression: 'attribute_not_exists(#status)' }));
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Creates an active record for a streamed upload and turns its reservation into usage of
   * `record.size` bytes, in one transaction. False when a record with this id already exists.
   */
  async createActive(record: FileRecord, reserved: number): Promise<boolean> {
    return this.transact([
      { Update: { ...this.setOwnFields(record), ConditionExpression: 'attribute_not_exists(#status)' } },
      { Update: this.settlement(record.userId, reserved, record.size) },
    ]);
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
          Key: { userId, fileId },
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

  /** Hands a claimed record back (pending again, until `expiresAt`), e.g. when nothing was uploaded yet. */
  async unclaim(record: FileRecord, claim: string, expiresAt: number): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { userId: record.userId, fileId: record.fileId },
          UpdateExpression: 'SET #status = :pending, expiresAt = :until REMOVE claim',
          ConditionExpression: '#status = :verifying AND claim = :claim',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':verifying': 'verifying', ':claim': claim, ':until': expiresAt },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  /**
   * Makes a claimed direct upload a file: the record becomes `record` (active) and the
   * reservation of `reserved` bytes becomes usage of `record.size`, in one transaction, only if
   * the claim still holds. False when it does not (the sweep took the record).
   */
  async activateClaimed(record: FileRecord, claim: string, reserved: number): Promise<boolean> {
    const update = this.setOwnFields(record);
    return this.transact([
      {
        Update: {
          ...update,
          UpdateExpression: `${update.UpdateExpression} REMOVE expiresAt, claim`,
          ConditionExpression: '#status = :verifying AND claim = :claim',
          ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':verifying': 'verifying', ':claim': claim },
        },
      },
      { Update: this.settlement(record.userId, reserved, record.size) },
    ]);
  }

  /**
   * Removes a record that never became a file and releases its reservation, in one transaction:
   * a claimed record only by its claim holder; an unclaimed one only once `expiresAt` is before
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
    return this.transact([
      {
        Delete: {
          TableName: this.table,
          Key: { userId: record.userId, fileId: record.fileId },
          ConditionExpression: condition.ConditionExpression,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: condition.values,
        },
      },
      { Update: this.settlement(record.userId, record.size, 0) },
    ]);
  }

  /** Deletes an active file's record and frees its bytes, in one transaction; false when it was already gone. */
  async deleteActive(record: FileRecord): Promise<boolean> {
    return this.transact([
      {
        Delete: {
          TableName: this.table,
          Key: { userId: record.userId, fileId: record.fileId },
          ConditionExpression: '#status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':active': 'active' },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: { userId: record.userId, fileId: USAGE },
          UpdateExpression: 'ADD usedBytes :minus, committedBytes :minus',
          ExpressionAttributeValues: { ':minus': -record.size },
        },
      },
    ]);
  }

  /** `SET` of the upload service's own fields (never the key, never another writer's attributes). */
  private setOwnFields(record: FileRecord) {
    const { userId, fileId, ...own } = record;
    const fields = Object.entries(own as OwnFields).filter(([, v]) => v !== undefined);
    return {
      TableName: this.table,
      Key: { userId, fileId },
      UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :f${i}`).join(', ')}`,
      ExpressionAttributeNames: { '#status': 'status', ...Object.fromEntries(fields.map(([k], i) => [`#f${i}`, k])) },
      ExpressionAttributeValues: Object.fromEntries(fields.map(([, v], i) => [`:f${i}`, v])) as Record<string, unknown>,
    };
  }

  /** Turns a reservation of `reserved` bytes into usage of `actual` bytes (0: a release). */
  private settlement(userId: string, reserved: number, actual: number) {
    return {
      TableName: this.table,
      Key: { userId, fileId: USAGE },
      UpdateExpression: 'ADD reservedBytes :minusReserved, committedBytes :delta, usedBytes :actual',
      ExpressionAttributeValues: { ':minusReserved': -reserved, ':delta': actual - reserved, ':actual': actual },
    };
  }

  /**
   * Runs a transaction: true when it was applied, false when a condition failed. A cancellation
   * caused only by concurrent writes to the same items (or throttling) is retried with the same
   * client token (idempotent), then reported as a storage outage.
   */
  private async transact(items: TransactItems): Promise<boolean> {
    const token = randomUUID();
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.db.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: token }));
        return true;
      } catch (err) {
        const reasons = cancellationReasons(err);
        if (reasons?.includes('ConditionalCheckFailed')) return false;
        if (!reasons || !reasons.some((r) => RETRYABLE_CANCELLATIONS.has(r))) throw err;
        if (attempt >= TRANSACTION_ATTEMPTS) throw new StorageUnavailable({ cause: err });
        await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt * Math.random()));
      }
    }
  }
}

/** Cancellation reasons that say "not now" rather than "not so". */
const RETRYABLE_CANCELLATIONS: ReadonlySet<string> = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded']);

/** The per-item reasons of a `TransactionCanceledException`, in request order; undefined for other errors. */
function cancellationReasons(err: unknown): string[] | undefined {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] } | null;
  if (e?.name !== 'TransactionCanceledException') return undefined;
  return (e.CancellationReasons ?? []).map((reason) => reason.Code ?? 'None');
}
