import {
  DeleteCommand,
  GetCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { isDependencyOutage } from './aws';
import { BackgroundRetries } from './background-retries';
import { cancellationReasons, isConditionFailed, isTransactionConflict } from './dynamo';
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
  /**
   * Where the object lives now. Absent until the sensitive mover (or a restore) writes it: a file
   * without it is in the primary bucket, and a sensitive one is still on its way to the vault.
   * Owned by the mover and restore: the upload service's writes never set or remove it.
   */
  location?: FileLocation;
  /** When the mover verified the vault copy and removed the primary one (ISO 8601). Owned like `location`. */
  movedAt?: string;
}

/** `primary`: the primary bucket (SSE-S3); `sensitive`: the KMS-encrypted vault. */
export type FileLocation = 'primary' | 'sensitive';

/** What the HTTP APIs show of a file (the upload API's file; backup-sync's restore answer adds `userId`). */
export interface FileView {
  id: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  sensitive: boolean;
  /** Where the file is now; `primary` until the mover (or a restore) says otherwise. */
  location: FileLocation;
  createdAt: string;
}

/** A record as the APIs show it (see `FileView`). */
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

interface Logger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** An update of a user's usage item: what `settlement` builds. */
interface UsageUpdate {
  TableName: string;
  Key: { userId: string; fileId: string };
  UpdateExpression: string;
  ExpressionAttributeValues: Record<string, number>;
}

type Conditional = ConstructorParameters<typeof UpdateCommand>[0] | { Delete: ConstructorParameters<typeof DeleteCommand>[0] };

/**
 * File metadata and per-user usage in DynamoDB. File ids are UUIDv7 (time-ordered), so a user's
 * partition read backwards lists the newest files first.
 *
 * Records are written with `UpdateItem ... SET` of the upload service's own fields only, never
 * replaced whole: other writers (the sensitive mover) add attributes of their own to the same
 * item, before or after the upload service writes it. A record counts as created once it has a
 * `status`. Bytes move between "reserved" and "used" only right after a conditional change of the
 * record's state succeeded, so each reservation is settled or released exactly once however many
 * requests race for the same record: the record's condition alone decides who acts. A usage update
 * (a release, or the one that follows a state change) that fails for a reason a retry may fix is
 * retried in the background until DynamoDB takes it (R1: a dependency outage must not leave quota
 * reserved for ever); one that fails for good, or for longer than the retry window, is logged
 * for an operator with its bytes: the counter is then off by those bytes, never the file.
 */
export class FileRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly log: Logger,
  ) {}

  /** Usage updates being retried after a DynamoDB outage (see `adjustUsage`). */
  private readonly retries = new BackgroundRetries();

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
    const update = {
      TableName: this.table,
      Key: { userId, fileId: USAGE },
      UpdateExpression: 'ADD reservedBytes :n, committedBytes :n',
      ConditionExpression: 'attribute_not_exists(committedBytes) OR committedBytes <= :max',
      ExpressionAttributeValues: { ':n': bytes, ':max': quota - bytes },
    };
    for (let attempt = 1; ; attempt += 1) {
      // A one-item transaction for its ClientRequestToken: the SDK's retry after a lost answer
      // must not reserve the bytes twice. A cancelled attempt applied nothing: a new token.
      const request = { ClientRequestToken: randomUUID(), TransactItems: [{ Update: update }] };
      try {
        await this.db.send(new TransactWriteCommand(request));
        return true;
      } catch (err) {
        if (isConditionFailed(err)) return false;
        // Another transaction on the user's usage item at that moment (a parallel upload): again.
        if (isTransactionConflict(err) && attempt < 5) continue;
        if (isDependencyOutage(err)) this.undoUnanswered(request, userId, bytes);
        throw err;
      }
    }
  }

  /**
   * A reservation whose answer was lost (DynamoDB unreachable, a reset connection) may have been
   * made. In the background: repeat it (its token makes it count once, whether or not the first
   * one landed), then give the bytes back, each retried through the outage (R1).
   */
  private undoUnanswered(request: ConstructorParameters<typeof TransactWriteCommand>[0], userId: string, bytes: number): void {
    const release = { ClientRequestToken: randomUUID(), TransactItems: [{ Update: this.settlement(userId, bytes, 0) }] };
    const usage = { key: { userId, fileId: USAGE }, reserved: bytes };
    void this.retries.run(this.log, 'undoing a quota reservation whose answer was lost', { usage }, async () => {
      try {
        await this.db.send(new TransactWriteCommand(request));
      } catch (err) {
        if (isConditionFailed(err)) return; // it was never made, and cannot be now
        throw err;
      }
      await this.db.send(new TransactWriteCommand(release));
    });
  }

  /** Gives a reservation back unused; never throws (see `adjustUsage`). */
  async release(userId: string, reserved: number): Promise<void> {
    await this.adjustUsage(this.settlement(userId, reserved, 0));
  }

  /**
   * Waits up to `withinMs` for the usage updates still being retried in the background; gives up
   * (and logs) the rest (see `BackgroundRetries.settled`): for a graceful shutdown, and for tests.
   */
  async settled(withinMs: number): Promise<void> {
    await this.retries.settled(withinMs);
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
   * Creates an active record for a streamed upload and turns its reservation of `reserved` bytes
   * into usage of `record.size`, both in one transaction (one request: the record's condition and
   * the usage change land together or not at all) with a `ClientRequestToken`, so the SDK's retry
   * after a lost answer applies it once. False when a record with this id already exists.
   *
   * The reservation is this call's from the moment it is made, whatever happens: settled by the
   * transaction, or given back here when the transaction was refused (false, or an error), or, when
   * no answer came through a DynamoDB outage, settled and undone in the background (the
   * transaction repeated under its token, then the record removed with its usage: see
   * `undoUnansweredCreate`), so the record does not outlive the upload that failed. The caller
   * never releases it afterwards.
   */
  async createActive(record: FileRecord, reserved: number): Promise<boolean> {
    const create = { ...this.setOwnFields(record), ConditionExpression: 'attribute_not_exists(#status)' };
    const usage = this.settlement(record.userId, reserved, record.size);
    for (let attempt = 1; ; attempt += 1) {
      // A cancelled attempt applied nothing: a new token.
      const request = { ClientRequestToken: randomUUID(), TransactItems: [{ Update: create }, { Update: usage }] };
      try {
        await this.db.send(new TransactWriteCommand(request));
        return true;
      } catch (err) {
        // Another transaction on the user's usage item at that moment (a parallel upload): again.
        if (isTransactionConflict(err) && attempt < 5) continue;
        if (isConditionFailed(err) || cancellationReasons(err) || !isDependencyOutage(err)) {
          if (reserved > 0) await this.release(record.userId, reserved);
          if (isConditionFailed(err)) return false;
        } else {
          this.undoUnansweredCreate(request, record, reserved);
        }
        throw err;
      }
    }
  }

  /**
   * A record transaction whose answer was lost may have been applied. In the background, through
   * the outage: repeat it under its token (it then counts once, whether or not the first one
   * landed), then delete the record and take its size off the usage, in one transaction under a
   * token of its own (repeated, it too counts once); if the repeat is refused (it never landed
   * and cannot now), give the reservation back instead.
   */
  private undoUnansweredCreate(request: ConstructorParameters<typeof TransactWriteCommand>[0], record: FileRecord, reserved: number): void {
    const context = { file: { userId: record.userId, fileId: record.fileId }, reserved, size: record.size };
    const removal = {
      ClientRequestToken: randomUUID(),
      TransactItems: [
        {
          Delete: {
            TableName: this.table,
            Key: { userId: record.userId, fileId: record.fileId },
            ConditionExpression: '#status = :active AND sha256 = :sha256',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':active': 'active', ':sha256': record.sha256 },
          },
        },
        { Update: this.settlement(record.userId, 0, -record.size) },
      ],
    };
    let applied = false;
    void this.retries.run(this.log, 'undoing a file record whose answer was lost', context, async () => {
      if (!applied) {
        try {
          await this.db.send(new TransactWriteCommand(request));
        } catch (err) {
          if (!isConditionFailed(err)) throw err;
          if (reserved > 0) await this.release(record.userId, reserved);
          return;
        }
        applied = true;
      }
      try {
        await this.db.send(new TransactWriteCommand(removal));
      } catch (err) {
        if (!isConditionFailed(err)) throw err; // else: the record is gone already (deleted by its owner)
      }
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
   * Makes a claimed direct upload a file: the record becomes `record` (active), only if the claim
   * still holds, then the reservation of `reserved` bytes becomes usage of `record.size`. False
   * when the claim no longer holds (the sweep took the record).
   */
  async activateClaimed(record: FileRecord, claim: string, reserved: number): Promise<boolean> {
    const update = this.setOwnFields(record);
    return this.changeState(
      {
        ...update,
        UpdateExpression: `${update.UpdateExpression} REMOVE expiresAt, claim`,
        ConditionExpression: '#status = :verifying AND claim = :claim',
        ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':verifying': 'verifying', ':claim': claim },
      },
      this.settlement(record.userId, reserved, record.size),
    );
  }

  /**
   * Removes a record that never became a file, then releases its reservation: a claimed record
   * only by its claim holder; an unclaimed one only once `expiresAt` is before `expiredBefore`
   * (the sweep). False when the condition no longer holds (someone else acted).
   */
  async discard(record: FileRecord, by: { claim: string } | { expiredBefore: number }): Promise<boolean> {
    const condition =
      'claim' in by
        ? { ConditionExpression: '#status = :verifying AND claim = :claim', values: { ':verifying': 'verifying', ':claim': by.claim } }
        : {
            ConditionExpression: '#status IN (:pending, :verifying) AND expiresAt < :now',
            values: { ':pending': 'pending', ':verifying': 'verifying', ':now': by.expiredBefore },
          };
    return this.changeState(
      {
        Delete: {
          TableName: this.table,
          Key: { userId: record.userId, fileId: record.fileId },
          ConditionExpression: condition.ConditionExpression,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: condition.values,
        },
      },
      this.settlement(record.userId, record.size, 0),
    );
  }

  /** Deletes an active file's record, then frees its bytes; false when it was already gone. */
  async deleteActive(record: FileRecord): Promise<boolean> {
    return this.changeState(
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
        TableName: this.table,
        Key: { userId: record.userId, fileId: USAGE },
        UpdateExpression: 'ADD usedBytes :minus, committedBytes :minus',
        ExpressionAttributeValues: { ':minus': -record.size },
      },
    );
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
   * size against the owner's quota, in one transaction: nothing happens when a record exists
   * already (false), so a restore that runs twice counts once. A restore may take a user over the
   * quota; new uploads are then refused until they delete.
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
    const usage = {
      TableName: this.table,
      Key: { userId: record.userId, fileId: USAGE },
      UpdateExpression: 'ADD usedBytes :n, committedBytes :n',
      ExpressionAttributeValues: { ':n': record.size },
    };
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

  /** Turns a reservation of `reserved` bytes into usage of `actual` bytes (0: a release). */
  private settlement(userId: string, reserved: number, actual: number): UsageUpdate {
    return {
      TableName: this.table,
      Key: { userId, fileId: USAGE },
      UpdateExpression: 'ADD reservedBytes :minusReserved, committedBytes :delta, usedBytes :actual',
      ExpressionAttributeValues: { ':minusReserved': -reserved, ':delta': actual - reserved, ':actual': actual },
    };
  }

  /**
   * A conditional change of a record's state, then (only if it was made) the usage update that
   * goes with it. True when the change was made; false when its condition failed.
   */
  private async changeState(change: Conditional, usage: UsageUpdate): Promise<boolean> {
    try {
      await this.db.send('Delete' in change ? new DeleteCommand(change.Delete) : new UpdateCommand(change));
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
    await this.adjustUsage(usage);
    return true;
  }

  /**
   * Applies a usage-counter update that must not be lost, as a one-item transaction with its own
   * `ClientRequestToken`: DynamoDB remembers the token for 10 minutes, longer than the background
   * retries last (`BackgroundRetries`), so a retry whose earlier attempt did land (only its answer
   * was lost) is not counted twice. Never throws: the caller's state change already stands; a
   * failure for good is logged for an operator with the bytes it concerns.
   */
  private async adjustUsage(update: UsageUpdate): Promise<void> {
    const request = { TransactItems: [{ Update: update }], ClientRequestToken: randomUUID() };
    const usage = { key: update.Key, update: update.UpdateExpression, values: update.ExpressionAttributeValues };
    await this.retries.run(this.log, 'a usage counter update', { usage }, () => this.db.send(new TransactWriteCommand(request)));
  }
}
