import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { isConditionFailed } from '@scs/common';

export interface FileRecord {
  userId: string;
  fileId: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  sensitive: boolean;
  /** `active` once the object is verified; `pending` while a direct upload is outstanding. */
  status: 'active' | 'pending';
  key: string;
  createdAt: string;
  /** For pending records: epoch seconds after which the sweep removes them. */
  expiresAt?: number;
}

/** The per-user usage counter lives in the same partition under a key no file id can take. */
const USAGE = '#usage';

/**
 * File metadata and per-user usage in DynamoDB. File ids are UUIDv7 (time-ordered), so a user's
 * partition read backwards lists the newest files first.
 */
export class FileRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async put(record: FileRecord): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: record }));
  }

  async get(userId: string, fileId: string): Promise<FileRecord | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { userId, fileId }, ConsistentRead: true }));
    return out.Item as FileRecord | undefined;
  }

  /** Newest first; `after` is the last file id of the previous page. */
  async list(userId: string, limit: number, after?: string): Promise<{ items: FileRecord[]; next?: string }> {
    const items: FileRecord[] = [];
    let start: Record<string, unknown> | undefined = after ? { userId, fileId: after } : undefined;
    // Pending records are skipped, so a page may need more than one query.
    while (items.length < limit) {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'userId = :u AND fileId >= :lo',
          FilterExpression: '#status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':u': userId, ':lo': '0', ':active': 'active' },
          ScanIndexForward: false,
          Limit: limit - items.length,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((out.Items ?? []) as FileRecord[]));
      start = out.LastEvaluatedKey;
      if (!start) break;
    }
    const last = items[items.length - 1];
    return start && last ? { items, next: last.fileId } : { items };
  }

  /** Deletes the record; false when it did not exist. */
  async delete(userId: string, fileId: string): Promise<boolean> {
    try {
      await this.db.send(
        new DeleteCommand({ TableName: this.table, Key: { userId, fileId }, ConditionExpression: 'attribute_exists(fileId)' }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /** Pending direct uploads whose time is up (a scan: the sweep runs rarely). */
  async expiredPending(nowSeconds: number): Promise<FileRecord[]> {
    const found: FileRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: '#status = :pending AND expiresAt < :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':now': nowSeconds },
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

  /** Turns a reservation into usage of `actual` bytes (or releases it when `actual` is 0 and not stored). */
  async settle(userId: string, reserved: number, actual: number): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { userId, fileId: USAGE },
        UpdateExpression: 'ADD reservedBytes :minusReserved, committedBytes :delta, usedBytes :actual',
        ExpressionAttributeValues: { ':minusReserved': -reserved, ':delta': actual - reserved, ':actual': actual },
      }),
    );
  }

  async release(userId: string, reserved: number): Promise<void> {
    await this.settle(userId, reserved, 0);
  }

  async freeUsage(userId: string, bytes: number): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { userId, fileId: USAGE },
        UpdateExpression: 'ADD usedBytes :minus, committedBytes :minus',
        ExpressionAttributeValues: { ':minus': -bytes },
      }),
    );
  }
}
