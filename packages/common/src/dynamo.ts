import { isThrottlingError, isTransientError } from '@smithy/core/retry';

type SdkError = Parameters<typeof isThrottlingError>[0];

/**
 * The per-item reasons DynamoDB gives when it cancels a transaction (`TransactionCanceledException`),
 * in the order of the request's `TransactItems`: `None`, `ConditionalCheckFailed`,
 * `TransactionConflict`, `ThrottlingError`, `ProvisionedThroughputExceeded`, `ValidationError`,
 * ... Undefined for any other error.
 */
export function cancellationReasons(err: unknown): string[] | undefined {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] } | null;
  if (e?.name !== 'TransactionCanceledException') return undefined;
  return (e.CancellationReasons ?? []).map((reason) => reason.Code ?? 'None');
}

/** Cancellation reasons that say "not now" rather than "not so": a retry may succeed. */
const TRANSIENT_CANCELLATIONS: ReadonlySet<string> = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

/**
 * True when a DynamoDB conditional write lost because a condition was false: a
 * `ConditionalCheckFailedException`, or a cancelled transaction in which at least one item's
 * condition failed. A transaction cancelled only for throttling or a conflict is not one.
 */
export function isConditionFailed(err: unknown): boolean {
  const reasons = cancellationReasons(err);
  if (reasons) return reasons.includes('ConditionalCheckFailed');
  return (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}

/** True when a transaction was cancelled only because it collided with another one on an item. */
export function isTransactionConflict(err: unknown): boolean {
  const reasons = cancellationReasons(err);
  return reasons !== undefined && reasons.includes('TransactionConflict') && !reasons.includes('ConditionalCheckFailed');
}

/**
 * True when a DynamoDB call failed for a reason a later retry may fix: a transaction cancelled for
 * throttling or a conflict (and no failed condition), or whatever the SDK's own error
 * classification calls throttling or transient (429, 5xx, timeouts, connection resets,
 * `TransactionInProgressException`, ...).
 */
export function isTransientDynamoFailure(err: unknown): boolean {
  const reasons = cancellationReasons(err);
  if (reasons) return !reasons.includes('ConditionalCheckFailed') && reasons.some((code) => TRANSIENT_CANCELLATIONS.has(code));
  if (typeof err !== 'object' || err === null) return false;
  return isThrottlingError(err as SdkError) || isTransientError(err as SdkError);
}
