import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed } from '@scs/common';

export interface ThrottleRule {
  maxFailures: number;
  windowSeconds: number;
}

interface Counter {
  pk: string;
  failures: number;
  /** Epoch seconds when the window (and any lock) ends. */
  windowEnds: number;
  expiresAt: number;
}

/**
 * Failed-login counters shared by every auth instance (AU-05): one DynamoDB item per account and
 * per client address, counting failures in a fixed window. Reaching the limit locks the key until
 * the window ends (never permanently); the item expires through TTL.
 */
export class LoginThrottle {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Seconds until `key` may try again, or 0 when it is not throttled. */
  async retryAfter(key: string, rule: ThrottleRule, nowSeconds: number): Promise<number> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: key }, ConsistentRead: true }));
    const c = out.Item as Counter | undefined;
    if (!c || c.windowEnds <= nowSeconds || c.failures < rule.maxFailures) return 0;
    return c.windowEnds - nowSeconds;
  }

  async recordFailure(key: string, rule: ThrottleRule, nowSeconds: number): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: key },
            UpdateExpression: 'ADD failures :one',
            ConditionExpression: 'windowEnds > :now',
            ExpressionAttributeValues: { ':one': 1, ':now': nowSeconds },
          }),
        );
        return;
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      // No window open for this key: start one, unless another instance just did.
      const windowEnds = nowSeconds + rule.windowSeconds;
      try {
        await this.db.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: key, failures: 1, windowEnds, expiresAt: windowEnds + 60 } satisfies Counter,
            ConditionExpression: 'attribute_not_exists(pk) OR windowEnds <= :now',
            ExpressionAttributeValues: { ':now': nowSeconds },
          }),
        );
        return;
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
    }
  }

  async reset(key: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: key } }));
  }
}
