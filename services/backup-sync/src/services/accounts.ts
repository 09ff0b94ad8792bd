import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Whether an account exists, by its id, in the auth service's users table (hash key `username`):
 * a restore for an account that no longer exists must not recreate a record and usage for nobody.
 * The table has no index by id, so this is a strongly consistent scan projecting `id` only (never
 * the password hash), stopped at the first match: for admin operations, which are rare.
 *
 * IAM: dynamodb:Scan on the users table (restrictable with `dynamodb:Attributes` to `id`).
 */
export class Accounts {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async exists(userId: string): Promise<boolean> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: '#id = :id',
          ProjectionExpression: '#id',
          ExpressionAttributeNames: { '#id': 'id' },
          ExpressionAttributeValues: { ':id': userId },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      if ((out.Items ?? []).length > 0) return true;
      start = out.LastEvaluatedKey;
    } while (start);
    return false;
  }
}
