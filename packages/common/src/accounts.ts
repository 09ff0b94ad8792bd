import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Role, RoleLookup } from './plugins/authenticate';

const ROLES: ReadonlySet<string> = new Set<Role>(['user', 'admin']);

/**
 * Reads an account's role as it is now from the auth service's users table (hash key `username`),
 * for routes restricted to roles: one strongly consistent GetItem of `id` and `role` only (never
 * the password hash), no cache, so a demotion takes effect on the next request. Resolves
 * undefined when the account no longer exists or the name now belongs to another account (its
 * `id` is not the token's `sub`). DynamoDB errors propagate (an outage answers 503).
 *
 * IAM: dynamodb:GetItem on the users table (restrictable with `dynamodb:Attributes` to
 * username, id and role).
 */
export function usersTableRoleLookup(db: DynamoDBDocumentClient, table: string): RoleLookup {
  return async (user) => {
    const out = await db.send(
      new GetCommand({
        TableName: table,
        Key: { username: user.username },
        ProjectionExpression: '#id, #role',
        ExpressionAttributeNames: { '#id': 'id', '#role': 'role' },
        ConsistentRead: true,
      }),
    );
    const item = out.Item as { id?: unknown; role?: unknown } | undefined;
    if (!item || item.id !== user.sub || typeof item.role !== 'string' || !ROLES.has(item.role)) return undefined;
    return item.role as Role;
  };
}
