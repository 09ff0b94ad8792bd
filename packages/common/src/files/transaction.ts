import { TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { isDependencyOutage } from '../aws';
import { cancellationReasons, isConditionFailed, isTransactionConflict } from '../dynamo';

/** A `TransactWriteItems` request of the document client, and one of its items (`Put`, `Update`, `Delete`, `ConditionCheck`). */
export type TransactRequest = ConstructorParameters<typeof TransactWriteCommand>[0];
export type TransactItem = NonNullable<TransactRequest['TransactItems']>[number];

/** The condition of one item of a transaction failed (see `transactWrite`'s `throwOn`). */
export class ConditionOn extends Error {
  constructor(readonly index: number) {
    super(`the condition of transaction item ${index} failed`);
    this.name = 'ConditionOn';
  }
}

/**
 * One transaction (a conditional change of an item and the usage change that goes with it),
 * with a `ClientRequestToken` (an SDK retry after a lost answer does not apply it twice),
 * repeated (up to 8 attempts) when it collided with another transaction on the same items. True
 * when it was made; false when a condition failed (nothing changed). With `throwOn`, a failed
 * condition of the item at that index alone throws `ConditionOn` instead, so the caller can tell
 * which condition failed. With `unanswered`, a transaction that got no answer (a dependency
 * outage) is handed to it first. Any other error is thrown.
 */
export async function transactWrite(
  db: DynamoDBDocumentClient,
  items: TransactItem[],
  opts: { throwOn?: number; unanswered?: (request: TransactRequest) => void } = {},
): Promise<boolean> {
  const request = { ClientRequestToken: randomUUID(), TransactItems: items };
  for (let attempt = 1; ; attempt += 1) {
    try {
      await db.send(new TransactWriteCommand(request));
      return true;
    } catch (err) {
      if (isConditionFailed(err)) {
        const reasons = cancellationReasons(err) ?? [];
        const failed = reasons.flatMap((r, i) => (r === 'ConditionalCheckFailed' ? [i] : []));
        if (opts.throwOn !== undefined && failed.length === 1 && failed[0] === opts.throwOn) throw new ConditionOn(opts.throwOn);
        return false;
      }
      if (isDependencyOutage(err)) opts.unanswered?.({ ...request });
      if (!isTransactionConflict(err) || attempt >= 8) throw err;
      // A cancelled transaction applied nothing: the next attempt gets a token of its own.
      request.ClientRequestToken = randomUUID();
    }
  }
}
