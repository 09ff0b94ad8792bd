import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed, type Role } from '@scs/common';

export interface User {
  id: string;
  username: string;
  role: Role;
  passwordHash: string;
  createdAt: string;
  updatedAt: string;
  /** Raised to end every session of the account at once (sessions remember it from sign-in). */
  sessionVersion?: number;
}

/**
 * Users in DynamoDB, keyed by the case-folded username, so uniqueness holds across every auth
 * instance through a conditional write.
 */
export class UserRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(username: string): Promise<User | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { username }, ConsistentRead: true }));
    return out.Item as User | undefined;
  }

  /** Creates the user; false when the username already exists. */
  async create(user: User): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({ TableName: this.table, Item: user, ConditionExpression: 'attribute_not_exists(username)' }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  async updatePasswordHash(username: string, passwordHash: string, now: string): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { username },
        UpdateExpression: 'SET passwordHash = :h, updatedAt = :now',
        ConditionExpression: 'attribute_exists(username)',
        ExpressionAttributeValues: { ':h': passwordHash, ':now': now },
      }),
    );
  }

  /**
   * Makes an existing account an admin with the given password hash, only if its role is still
   * `expectedRole` (false otherwise). With `endSessions`, every session of the account ends (its
   * session version is raised).
   */
  async setAdmin(username: string, expectedRole: Role, passwordHash: string, now: string, endSessions: boolean): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { username },
          UpdateExpression: `SET passwordHash = :h, #role = :admin, updatedAt = :now${endSessions ? ' ADD sessionVersion :one' : ''}`,
          ConditionExpression: 'attribute_exists(username) AND #role = :expected',
          ExpressionAttributeNames: { '#role': 'role' },
          ExpressionAttributeValues: {
            ':h': passwordHash,
            ':admin': 'admin',
            ':now': now,
            ':expected': expectedRole,
            ...(endSessions ? { ':one': 1 } : {}),
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }
}
