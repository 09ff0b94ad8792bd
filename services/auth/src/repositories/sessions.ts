import { GetCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { cancellationReasons, isConditionFailed, isTransactionConflict, isTransientDynamoFailure, type Role, StorageUnavailable } from '@scs/common';

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
  /** Set by rotation: when (epoch ms), the successor's hash, and the seed it was derived with. */
  rotatedAt?: number;
  successorHash?: string;
  successorSeed?: string;
}

/** A session: the family of refresh tokens that rotation produces from one login. */
export interface FamilyRecord {
  pk: string;
  userId: string;
  revoked: boolean;
  createdAt: string;
  expiresAt: number;
  /** The account's role and session version at sign-in: a session never outlives a change of either. */
  role?: Role;
  sessionVersion?: number;
}

export interface NewToken {
  tokenHash: string;
  userId: string;
  username: string;
  expiresAt: number;
}

/**
 * What a rotation did: `rotated`; `superseded` when the old token was no longer active (another
 * request rotated or revoked it first); `family_revoked` when the session had ended; `conflict`
 * when DynamoDB cancelled the transaction because another one touched the same items (try again).
 */
export type RotateResult = 'rotated' | 'superseded' | 'family_revoked' | 'conflict';

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
    first: NewToken,
    family: { expiresAt: number; role: Role; sessionVersion: number },
    now: string,
  ): Promise<void> {
    await this.db.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: this.table,
              Item: { pk: familyKey(familyId), userId: first.userId, revoked: false, createdAt: now, ...family } satisfies FamilyRecord,
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
   * Marks `oldHash` rotated (recording when, and its successor) and stores the successor,
   * atomically, only if the old token is still active and its family not revoked. The reasons of
   * a cancelled transaction are told apart: a failed condition is `superseded` or
   * `family_revoked`, a collision with another transaction is `conflict`; throttling and other
   * transient failures throw StorageUnavailable (503, Retry-After) and change nothing.
   */
  async rotate(
    oldHash: string,
    familyId: string,
    next: NewToken & { seed: string },
    nowMs: number,
  ): Promise<RotateResult> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: { pk: tokenKey(oldHash) },
                UpdateExpression: 'SET #status = :rotated, rotatedAt = :now, successorHash = :next, successorSeed = :seed',
                ConditionExpression: '#status = :active',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: {
                  ':rotated': 'rotated',
                  ':active': 'active',
                  ':now': nowMs,
                  ':next': next.tokenHash,
                  ':seed': next.seed,
                },
              },
            },
            {
              ConditionCheck: {
                TableName: this.table,
                Key: { pk: familyKey(familyId) },
                ConditionExpression: 'revoked = :false',
                ExpressionAttributeValues: { ':false': false },
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: this.tokenItem(familyId, next, new Date(nowMs).toISOString()),
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
      return 'rotated';
    } catch (err) {
      const [token, family] = cancellationReasons(err) ?? [];
      if (family === 'ConditionalCheckFailed') return 'family_revoked';
      if (token === 'ConditionalCheckFailed') return 'superseded';
      if (isTransactionConflict(err)) return 'conflict';
      if (isTransientDynamoFailure(err)) throw new StorageUnavailable({ cause: err });
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

  private tokenItem(familyId: string, t: NewToken, now: string): RefreshTokenRecord {
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
