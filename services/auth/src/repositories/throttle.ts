import { DeleteCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed, ServiceBusy } from '@scs/common';

export interface ThrottleRule {
  /** Attempts allowed per window; the next one waits until the window ends. */
  maxFailures: number;
  windowSeconds: number;
}

interface Counter {
  pk: string;
  /** Attempts counted in this window: failed ones, and ones still being checked. */
  attempts: number;
  /** Epoch seconds when the window (and any lock) ends. */
  windowEnds: number;
  expiresAt: number;
}

/** A number attribute of the item a failed condition returns (raw `{N: "..."}` or unmarshalled). */
function numberOf(item: Record<string, unknown> | undefined, name: string): number {
  const value = item?.[name];
  return Number(typeof value === 'object' && value !== null && 'N' in value ? value.N : (value ?? Number.NaN));
}

/**
 * Login attempt counters shared by every auth instance (AU-05): one DynamoDB item per account and
 * per client address, counting attempts in a fixed window. An attempt is counted **before** the
 * password is checked, by a conditional update that succeeds only while the key is under its
 * limit, so parallel attempts cannot all get through: at most `maxFailures` are ever checked per
 * window. A success gives its attempt back (address) or clears the account's counter. The lock
 * ends with the window (never permanent); items expire through TTL.
 */
export class LoginThrottle {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /**
   * Counts one attempt for `key`. Resolves 0 when the attempt may go ahead, or the seconds until
   * the key's window ends when it is at its limit (nothing counted then).
   */
  async acquire(key: string, rule: ThrottleRule, nowSeconds: number): Promise<number> {
    for (let round = 0; round < 3; round += 1) {
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: key },
            UpdateExpression: 'ADD attempts :one',
            // A counter without `attempts` (an item from before attempts were counted) starts at 0.
            ConditionExpression: 'windowEnds > :now AND (attribute_not_exists(attempts) OR attempts < :max)',
            ExpressionAttributeValues: { ':one': 1, ':now': nowSeconds, ':max': rule.maxFailures },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return 0;
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        const windowEnds = numberOf((err as { Item?: Record<string, unknown> }).Item, 'windowEnds');
        // The window is open, so the condition failed on the limit.
        if (windowEnds > nowSeconds) return windowEnds - nowSeconds;
      }
      // No window open for this key: start one with this attempt, unless another instance just did.
      const windowEnds = nowSeconds + rule.windowSeconds;
      try {
        await this.db.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: key, attempts: 1, windowEnds, expiresAt: windowEnds + 60 } satisfies Counter,
            ConditionExpression: 'attribute_not_exists(pk) OR windowEnds <= :now',
            ExpressionAttributeValues: { ':now': nowSeconds },
          }),
        );
        return 0;
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
    }
    // Three rounds lost to other instances opening and closing windows: a flood; come back shortly.
    throw new ServiceBusy();
  }

  /** Gives back an attempt that was not a failure (a success, or one refused by another limit). */
  async release(key: string, nowSeconds: number): Promise<void> {
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: key },
          UpdateExpression: 'ADD attempts :minusOne',
          ConditionExpression: 'windowEnds > :now AND attempts > :zero',
          ExpressionAttributeValues: { ':minusOne': -1, ':now': nowSeconds, ':zero': 0 },
        }),
      )
      .catch((err: unknown) => {
        if (!isConditionFailed(err)) throw err;
      });
  }

  /** Clears the key's counter (a successful login clears its account's failures). */
  async reset(key: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: key } }));
  }
}
