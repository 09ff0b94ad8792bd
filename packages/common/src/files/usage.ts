import { GetCommand, QueryCommand, ScanCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { isDependencyOutage } from '../aws';
import { BackgroundRetries } from '../background-retries';
import { isConditionFailed, isTransactionConflict } from '../dynamo';
import type { Logger } from '../logger';
import { RESERVATION_KEY_PREFIX, reservationKey, USAGE_SORT_KEY, usageKey, type ItemKey } from './keys';
import { transactWrite, type TransactItem, type TransactRequest } from './transaction';

/**
 * Bytes a streamed upload holds of its owner's quota, and one file of their file count (even at
 * zero bytes): one item in the owner's partition, created
 * with the reservation and removed with its settlement or release (in the same transaction as the
 * usage change), kept alive by its upload (`renew`) until `until`. One whose upload no
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
type UsageDelta = Partial<UsageCounters>;

/** What one user's usage reconciliation found and did (`reconcile`). */
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

/** The limits a reservation must fit: `quota` bytes and, when given, `maxFiles` files (uploads under way included). */
export interface UsageLimits {
  quota: number;
  maxFiles?: number | undefined;
}

/** An update of a user's usage item. */
interface UsageUpdate {
  TableName: string;
  Key: ItemKey;
  UpdateExpression: string;
  ExpressionAttributeValues: Record<string, number>;
  ConditionExpression?: string;
}

/**
 * Every change of the usage item adds 1 to this attribute, in the same write (or transaction) as
 * the change of the item it accounts for: the usage reconciliation rewrites the counters only if
 * nothing changed since it read them (`reconcile`).
 */
const SEQ = 'usageSeq';

/**
 * Per-user usage in the files table (FU-03): bytes in the user's usage item (`usedBytes`,
 * `reservedBytes`, and their sum `committedBytes` for the quota condition, since DynamoDB
 * conditions cannot add), and files the same way (`usedFiles`, `reservedFiles`, `committedFiles`
 * for the file-count condition). Every reservation (a streamed upload's reservation item, a direct
 * upload's pending record) holds its bytes and one file, even at zero bytes. Every change of the
 * counters happens in one transaction with the change of the item it accounts for (a reservation
 * item, a record's state) and adds 1 to `usageSeq`; each such item change is conditional, so each
 * reservation is settled or released exactly once however many requests race for it. Therefore the
 * counters can always be recomputed from the partition: used = the sizes and the number of active
 * (and deleting) records, reserved = the reservation items plus the pending and verifying records
 * (`reconcile`).
 *
 * Where a usage change goes with a change of a file record (a pending upload created, activated or
 * discarded; a streamed upload's record written; a delete's last step; a restore), both are ONE
 * DynamoDB transaction: this repository owns the usage item and the reservation items and builds
 * their part of it (`reserveItem`, `settleItems`, `settlePendingItem`, `releasePendingItem`,
 * `countItem`, `uncountItem`), and `FileRepository` adds the record's part and sends them together.
 * What changes no record (a streamed upload's reservation, its renewal and release, the usage
 * reconciliation) this repository does on its own. A release that fails for a reason a retry may
 * fix is retried in the background (R1); one that fails for good is left to the reconciliation.
 */
export class UsageRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly log: Pick<Logger, 'warn' | 'error'>,
  ) {}

  /** Releases being retried after a DynamoDB outage (see `release`). */
  private readonly retries = new BackgroundRetries();

  /** The user's bytes: stored (`usedBytes`) and held by reservations (`reservedBytes`). */
  async usage(userId: string): Promise<{ usedBytes: number; reservedBytes: number }> {
    const item = await this.counters(userId);
    return { usedBytes: Number(item?.usedBytes ?? 0), reservedBytes: Number(item?.reservedBytes ?? 0) };
  }

  /**
   * The user's file counts: files stored, files held by reservations (streamed uploads under way
   * and pending direct uploads), and their sum, which the file-count quota bounds (see `reserve`).
   */
  async fileCounts(userId: string): Promise<{ usedFiles: number; reservedFiles: number; committedFiles: number }> {
    const item = await this.counters(userId);
    const n = (k: string) => Number(item?.[k] ?? 0);
    return { usedFiles: n('usedFiles'), reservedFiles: n('reservedFiles'), committedFiles: n('committedFiles') };
  }

  /** The user's usage item (strongly consistent), or undefined before their first reservation. */
  private async counters(userId: string): Promise<Record<string, unknown> | undefined> {
    return (await this.db.send(new GetCommand({ TableName: this.table, Key: usageKey(userId), ConsistentRead: true }))).Item;
  }

  /**
   * Reserves `bytes` of the user's quota and one file of their file count (FU-03) for a streamed
   * upload, held until `until` (epoch seconds; the upload renews it while it runs: `renew`).
   * The condition compares `committedBytes` with quota - bytes, so parallel uploads can never
   * overshoot; `committedFiles` is kept the same way against `maxFiles` (no file-count limit when
   * it is omitted). The reservation item (its bytes and its one file) and the counters change in
   * one transaction. Undefined when the quota or the file count would be exceeded (`fileCounts`
   * tells which).
   */
  async reserve(userId: string, bytes: number, quota: number, until: number, maxFiles?: number): Promise<Reservation | undefined> {
    const counters = this.reserveItem(userId, bytes, { quota, maxFiles });
    if (!counters) return undefined;
    const reservation: Reservation = { userId, id: randomUUID(), bytes };
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.table,
          Item: { ...reservationKey(userId, reservation.id), bytes, files: 1, until, createdAt: new Date().toISOString() },
          ConditionExpression: 'attribute_not_exists(fileId)',
        },
      },
      counters,
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
  private undoUnanswered(request: TransactRequest, reservation: Reservation): void {
    const usage = { key: usageKey(reservation.userId), reserved: reservation.bytes };
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
  async renew(reservation: Reservation, until: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: reservationKey(reservation.userId, reservation.id),
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
    const usage = { key: usageKey(reservation.userId), reservation: reservation.id, reserved: reservation.bytes };
    await this.retries.run(this.log, 'a usage counter update', { usage }, () => this.releaseOnce(reservation));
  }

  private async releaseOnce(reservation: Reservation, condition?: { expiredBefore: number }): Promise<boolean> {
    return transactWrite(this.db, [
      {
        Delete: {
          TableName: this.table,
          Key: reservationKey(reservation.userId, reservation.id),
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

  /** Every user who has a usage item (a scan of the table: for the usage reconciliation, which runs rarely). */
  async *usersWithUsage(): AsyncGenerator<string> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'fileId = :usage',
          ProjectionExpression: 'userId',
          ExpressionAttributeValues: { ':usage': USAGE_SORT_KEY },
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
   * computation starts again (up to 10 times). Uploads may run throughout.
   */
  async reconcile(userId: string, nowSeconds: number): Promise<UsageReconciliation> {
    let releasedReservations = 0;
    let releasedBytes = 0;
    let first: UsageCounters | undefined;
    for (let attempt = 1; ; attempt += 1) {
      const usageItem = await this.counters(userId);
      const counter = (k: keyof UsageCounters) => Number(usageItem?.[k] ?? 0);
      const before: UsageCounters = { usedBytes: counter('usedBytes'), reservedBytes: counter('reservedBytes'), usedFiles: counter('usedFiles'), reservedFiles: counter('reservedFiles') };
      first ??= before;
      const seq = typeof usageItem?.[SEQ] === 'number' ? usageItem[SEQ] : undefined;
      const after: UsageCounters = { usedBytes: 0, reservedBytes: 0, usedFiles: 0, reservedFiles: 0 };
      let released = false;
      for await (const item of this.partition(userId)) {
        const fileId = String(item.fileId);
        if (fileId.startsWith(RESERVATION_KEY_PREFIX)) {
          const reservation = { userId, id: fileId.slice(RESERVATION_KEY_PREFIX.length), bytes: Number(item.bytes ?? 0) };
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
      const result = (corrected: boolean): UsageReconciliation => ({ userId, before: first ?? before, after, releasedReservations, releasedBytes, corrected });
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
            Key: usageKey(userId),
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
        const was = first ?? before;
        if ((Object.keys(after) as (keyof UsageCounters)[]).some((k) => was[k] !== after[k])) {
          this.log.warn({ userId, before: was, after }, 'usage reconciliation corrected the counters');
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

  // The usage part of a record's transaction (see the class comment): FileRepository composes these.

  /**
   * A new reservation of `bytes` and one file, for a transaction that also creates the item that
   * holds it (a pending record): its condition fails when the committed bytes would exceed
   * `limits.quota` or, with `maxFiles`, the committed files would exceed it. Undefined when it can
   * never fit (more bytes than the quota, a file count below 1).
   */
  reserveItem(userId: string, bytes: number, limits: UsageLimits): TransactItem | undefined {
    const { quota, maxFiles } = limits;
    if (bytes > quota || (maxFiles !== undefined && maxFiles < 1)) return undefined;
    const files = maxFiles === undefined ? '' : ' AND (attribute_not_exists(committedFiles) OR committedFiles <= :maxFiles)';
    const change = this.usageChange(userId, { reservedBytes: bytes, reservedFiles: 1 });
    return {
      Update: {
        ...change,
        ConditionExpression: `(attribute_not_exists(committedBytes) OR committedBytes <= :max)${files}`,
        ExpressionAttributeValues: { ...change.ExpressionAttributeValues, ':max': quota - bytes, ...(maxFiles === undefined ? {} : { ':maxFiles': maxFiles - 1 }) },
      },
    };
  }

  /**
   * A streamed upload's reservation settled as a stored file of `actualBytes`: two items, in this
   * order: the reservation item's removal (its condition fails when the reservation is gone:
   * released meanwhile), and the change of the counters (the reservation's bytes and file become
   * `actualBytes` and one file used).
   */
  settleItems(reservation: Reservation, actualBytes: number): [TransactItem, TransactItem] {
    return [
      { Delete: { TableName: this.table, Key: reservationKey(reservation.userId, reservation.id), ConditionExpression: 'attribute_exists(fileId)' } },
      { Update: this.settlement(reservation.userId, reservation.bytes, actualBytes, true) },
    ];
  }

  /** A reservation held by a pending record (`reservedBytes` and one file) become a stored file of `actualBytes`. */
  settlePendingItem(userId: string, reservedBytes: number, actualBytes: number): TransactItem {
    return { Update: this.settlement(userId, reservedBytes, actualBytes, true) };
  }

  /** A reservation held by a pending record (`reservedBytes` and one file) given back unused. */
  releasePendingItem(userId: string, reservedBytes: number): TransactItem {
    return { Update: this.settlement(userId, reservedBytes, 0, false) };
  }

  /** A stored file of `bytes` counted (no reservation: a restore, or a record written by a tool or a test). */
  countItem(userId: string, bytes: number): TransactItem {
    return { Update: this.usageChange(userId, { usedBytes: bytes, usedFiles: 1 }) };
  }

  /** A stored file of `bytes` no longer counted (its record is removed). */
  uncountItem(userId: string, bytes: number): TransactItem {
    return { Update: this.usageChange(userId, { usedBytes: -bytes, usedFiles: -1 }) };
  }

  /**
   * Turns a reservation of `reserved` bytes and one file into usage of `actual` bytes and, when
   * `stored`, one file (otherwise a release: the bytes and the file are given back).
   */
  private settlement(userId: string, reserved: number, actual: number, stored: boolean): UsageUpdate {
    return this.usageChange(userId, { reservedBytes: -reserved, usedBytes: actual, reservedFiles: -1, usedFiles: stored ? 1 : 0 });
  }

  /**
   * One change of the user's usage counters (bytes and files, used and reserved, and the committed
   * sums the quota conditions compare), adding 1 to `usageSeq`.
   */
  private usageChange(userId: string, delta: UsageDelta): UsageUpdate {
    const { usedBytes = 0, reservedBytes = 0, usedFiles = 0, reservedFiles = 0 } = delta;
    return {
      TableName: this.table,
      Key: usageKey(userId),
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
}
