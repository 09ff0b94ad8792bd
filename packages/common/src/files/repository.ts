import { GetCommand, QueryCommand, ScanCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackgroundRetries } from '../background-retries';
import { isConditionFailed, isTransactionConflict } from '../dynamo';
import type { Logger } from '../logger';
import { isSha256Hex } from '../s3-copy';
import { PENDING_KEY_PREFIX, pendingKey, type ItemKey } from './keys';
import { type FileLocation, type FileRecord, MOVER_FIELDS, ownFieldsUpdate, recordOf } from './record';
import { ConditionOn, transactWrite, type TransactItem, type TransactRequest } from './transaction';
import { type Reservation, type UsageLimits, UsageRepository } from './usage';

/**
 * File records in DynamoDB (the files table: one partition per user, `keys.ts` for the layout).
 * File ids are UUIDv7 (time-ordered), so a user's partition read backwards lists the newest files
 * first.
 *
 * Records are written with `UpdateItem ... SET` of the upload service's own fields only, never
 * replaced whole: other writers (the sensitive mover) add attributes of their own to the same
 * item, before or after the upload service writes it. A record counts as created once it has a
 * `status`.
 *
 * A record change that changes usage too (a pending upload created, activated or discarded, a
 * streamed upload's record written, a delete's last step, a restore) is ONE DynamoDB transaction:
 * the record's item built here, the usage item's (and a streamed upload's reservation item's)
 * built by `UsageRepository` (`usage.ts`, which owns the counters and what they mean), sent
 * together by `transactWrite`. So each reservation is settled or released exactly once however
 * many requests race for it, and the counters can always be recomputed from the partition (the
 * usage reconciliation). A record write whose answer was lost in a DynamoDB outage is undone in
 * the background (R1).
 */
export class FileRepository {
  /**
   * `usage` builds the usage part of the record transactions; give the one the service reserves
   * through, so `settled` also waits for its releases (one of its own otherwise).
   */
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly log: Pick<Logger, 'warn' | 'error'>,
    private readonly usage: UsageRepository = new UsageRepository(db, table, log),
  ) {}

  /** Record writes being undone in the background after a DynamoDB outage (see `createActive`). */
  private readonly retries = new BackgroundRetries();

  /**
   * The record of `fileId` in whatever state (active, deleting, or a pending or verifying direct
   * upload), or undefined. An active file is one read; otherwise the pending place is read, then the
   * file's place once more (the upload may have become active between the two reads).
   */
  async get(userId: string, fileId: string): Promise<FileRecord | undefined> {
    const read = async (Key: ItemKey) => {
      const out = await this.db.send(new GetCommand({ TableName: this.table, Key, ConsistentRead: true }));
      // An item another writer created before the upload service wrote its record is not a file yet.
      return out.Item?.status ? recordOf(out.Item) : undefined;
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
      items.push(...(out.Items ?? []).map(recordOf));
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
      found.push(...(out.Items ?? []).map(recordOf));
      start = out.LastEvaluatedKey;
    } while (start);
    return found;
  }

  /** Pending or verifying direct uploads whose time is up: all of them (a scan: the sweep runs rarely), or one user's. */
  async expiredPending(nowSeconds: number, userId?: string): Promise<FileRecord[]> {
    const values = { ':pending': 'pending', ':verifying': 'verifying', ':now': nowSeconds };
    return this.matching({ FilterExpression: '#status IN (:pending, :verifying) AND expiresAt < :now', values }, userId);
  }

  /**
   * Deleting records whose delete stopped half-way (its request died) and whose time is up: all of
   * them (a scan: the sweep runs rarely), or one user's. The sweep finishes them (`finishDelete`).
   */
  async expiredDeletes(nowSeconds: number, userId?: string): Promise<FileRecord[]> {
    return this.matching({ FilterExpression: '#status = :deleting AND expiresAt < :now', values: { ':deleting': 'deleting', ':now': nowSeconds } }, userId);
  }

  /** The records `filter` keeps (`#status` names the status): a scan of the table, or a query of `userId`'s partition. */
  private async matching(filter: { FilterExpression: string; values: Record<string, unknown> }, userId?: string): Promise<FileRecord[]> {
    const found: FileRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = {
        TableName: this.table,
        FilterExpression: filter.FilterExpression,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: filter.values,
        ...(start ? { ExclusiveStartKey: start } : {}),
      };
      const out = userId
        ? await this.db.send(new QueryCommand({ ...page, KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ...filter.values, ':u': userId } }))
        : await this.db.send(new ScanCommand(page));
      found.push(...(out.Items ?? []).map(recordOf));
      start = out.LastEvaluatedKey;
    } while (start);
    return found;
  }

  /**
   * Waits up to `withinMs` for the record writes being undone and the usage updates being retried in
   * the background; gives up (and logs) the rest (see `BackgroundRetries.settled`): for a graceful
   * shutdown, and for tests.
   */
  async settled(withinMs: number): Promise<void> {
    await Promise.all([this.retries.settled(withinMs), this.usage.settled(withinMs)]);
  }

  /**
   * Creates a pending record (a direct upload waiting for its bytes) in the pending place (see
   * `PENDING_KEY_PREFIX`) and reserves its size of the user's `quota` and one file of `maxFiles`
   * (FU-03; no file-count limit when omitted), in one transaction: the record is the reservation.
   * False (nothing changed) when the quota or the file count would be exceeded (`UsageRepository.fileCounts` tells
   * which) or the record exists.
   */
  async createPending(record: FileRecord, quota: number, maxFiles?: number): Promise<boolean> {
    const limits: UsageLimits = { quota, maxFiles };
    const reserve = this.usage.reserveItem(record.userId, record.size, limits);
    if (!reserve) return false;
    const create = ownFieldsUpdate(this.table, record);
    return this.transact([{ Update: { ...create, Key: pendingKey(record.userId, record.fileId), ConditionExpression: 'attribute_not_exists(#status)' } }, reserve]);
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
    const create: TransactItem = { Update: { ...ownFieldsUpdate(this.table, record), ConditionExpression: 'attribute_not_exists(#status)' } };
    const unreserved = this.usage.countItem(record.userId, record.size);
    const unanswered = (request: TransactRequest) => this.undoUnansweredCreate(request, record);
    if (reserved === 0) return this.transact([create, unreserved], { unanswered });
    try {
      // The reservation item's removal is the transaction's item 1 (see `settleItems`).
      return await this.transact([create, ...this.usage.settleItems(reserved, record.size)], { throwOn: 1, unanswered });
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
        this.usage.uncountItem(record.userId, record.size),
      ]);
    });
  }

  /**
   * The one `/complete` allowed to act takes the pending record (or a verifying one whose claim
   * ran out: its request died). Returns the claim token, or undefined when another request holds
   * the record or it is no longer pending.
   */
  async claim(userId: string, fileId: string, leaseSeconds: number, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string | undefined> {
    return this.claimWhen(userId, fileId, leaseSeconds, nowSeconds, '#status = :pending OR (#status = :verifying AND expiresAt < :now)');
  }

  /**
   * Takes a pending or verifying record over whatever claim holds it and however long its lease
   * still runs: a user's cancel wins over a `/complete` under way, whose later claim-conditioned
   * steps (`activateClaimed`, `unclaim`, `discard`) then find their claim gone. The new claim, or
   * undefined when the record is neither pending nor verifying (a file by now, or gone).
   */
  async takeOver(userId: string, fileId: string, leaseSeconds: number, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string | undefined> {
    return this.claimWhen(userId, fileId, leaseSeconds, nowSeconds, '#status IN (:pending, :verifying)');
  }

  /** A new claim on the pending record, held for `leaseSeconds`, if `condition` holds (it may use :pending, :verifying, :now). */
  private async claimWhen(userId: string, fileId: string, leaseSeconds: number, nowSeconds: number, condition: string): Promise<string | undefined> {
    const claim = randomUUID();
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: pendingKey(userId, fileId),
          UpdateExpression: 'SET #status = :verifying, claim = :claim, expiresAt = :until',
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':verifying': 'verifying',
            ':pending': 'pending',
            ':claim': claim,
            ':until': nowSeconds + leaseSeconds,
            ...(condition.includes(':now') ? { ':now': nowSeconds } : {}),
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
          { Update: { ...ownFieldsUpdate(this.table, record), ConditionExpression: 'attribute_not_exists(#status)' } },
          this.usage.settlePendingItem(record.userId, reserved, record.size),
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
        this.usage.releasePendingItem(record.userId, record.size),
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
      this.usage.uncountItem(record.userId, record.size),
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
    const own = ownFieldsUpdate(this.table, record);
    const mover = MOVER_FIELDS.filter((f) => record[f] !== undefined);
    const update = {
      ...own,
      UpdateExpression: [own.UpdateExpression, ...mover.map((f) => `#${f} = :${f}`)].join(', '),
      ConditionExpression: 'attribute_not_exists(#status)',
      ExpressionAttributeNames: { ...own.ExpressionAttributeNames, ...Object.fromEntries(mover.map((f) => [`#${f}`, f])) },
      ExpressionAttributeValues: { ...own.ExpressionAttributeValues, ...Object.fromEntries(mover.map((f) => [`:${f}`, record[f]])) },
    };
    const usage = this.usage.countItem(record.userId, record.size);
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.db.send(new TransactWriteCommand({ TransactItems: [{ Update: update }, usage] }));
        return true;
      } catch (err) {
        if (isConditionFailed(err)) return false;
        // Another transaction on the same items at that moment (another restore?): try again.
        if (!isTransactionConflict(err) || attempt >= 5) throw err;
      }
    }
  }

  /** A record transaction (see `transactWrite`). */
  private transact(items: TransactItem[], opts: Parameters<typeof transactWrite>[2] = {}): Promise<boolean> {
    return transactWrite(this.db, items, opts);
  }
}
