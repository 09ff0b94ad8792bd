import { GetCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed } from '@scs/common';

/** A refresh token as stored: only its SHA-256, never the token itself. */
export interface RefreshTokenRecord {
  pk: string;
  familyId: string;
  userId: string;
  username: string;
  status: 'active' | 'rotated' | 'revoked';
  createdAt: string;
  /** Epoch seconds; also the DynamoDB TTL attribute. */
  expiresAt: number;
}

/** A session: the family of refresh tokens that rotation produces from one login. */
export interface FamilyRecord {
  pk: string;
  userId: string;
  revoked: boolean;
  createdAt: string;
  expiresAt: number;
}

const tokenKey = (tokenHash: string) => `rt#${tokenHash}`;
const familyKey = (familyId: string) => `fam#${familyId}`;

/** Refresh-token families in DynamoDB (JW-06): rotation is one conditional transaction. */
export class SessionRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async startFamily(
    familyId: string,
    first: { tokenHash: string; userId: string; username: string; expiresAt: number },
    familyExpiresAt: number,
    now: string,
  ): Promise<void> {
    await this.db.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: this.table,
              Item: { pk: familyKey(familyId), userId: first.userId, revoked: false, createdAt: now, expiresAt: familyExpiresAt },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Put: {
              TableName: this.table,
              Item: this.tokenItem(familyId, first, now),
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
        ],
      }),
    );
  }

  async getToken(tokenHash: string): Promise<RefreshTokenRecord | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: tokenKey(tokenHash) }, ConsistentRead: true }));
    return out.Item as RefreshTokenRecord | undefined;
  }

  async getFamily(familyId: string): Promise<FamilyRecord | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: familyKey(familyId) }, ConsistentRead: true }));
    return out.Item as FamilyRecord | undefined;
  }

  /**
   * Marks `oldHash` rotated and stores its successor, atomically, only if the old token is still
   * active and its family not revoked. False means someone used the old token first (reuse).
   */
  async rotate(
    oldHash: string,
    next: { tokenHash: string; familyId: string; userId: string; username: string; expiresAt: number },
    now: string,
  ): Promise<boolean> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: { pk: tokenKey(oldHash) },
                UpdateExpression: 'SET #status = :rotated',
                ConditionExpression: '#status = :active',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':rotated': 'rotated', ':active': 'active' },
              },
            },
            {
              ConditionCheck: {
                TableName: this.table,
                Key: { pk: familyKey(next.familyId) },
                ConditionExpression: 'revoked = :false',
                ExpressionAttributeValues: { ':false': false },
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: this.tokenItem(next.familyId, next, now),
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /** Ends a session: no token of the family can be refreshed again. */
  async revokeFamily(familyId: string): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: familyKey(familyId) },
        UpdateExpression: 'SET revoked = :true',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':true': true },
      }),
    ).catch((err: unknown) => {
      if (!isConditionFailed(err)) throw err;
    });
  }

  async revokeToken(tokenHash: string): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: tokenKey(tokenHash) },
        UpdateExpression: 'SET #status = :revoked',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':revoked': 'revoked' },
      }),
    ).catch((err: unknown) => {
      if (!isConditionFailed(err)) throw err;
    });
  }

  private tokenItem(
    familyId: string,
    t: { tokenHash: string; userId: string; username: string; expiresAt: number },
    now: string,
  ): RefreshTokenRecord {
    return {
      pk: tokenKey(t.tokenHash),
      familyId,
      userId: t.userId,
      username: t.username,
      status: 'active',
      createdAt: now,
      expiresAt: t.expiresAt,
    };
  }
}

