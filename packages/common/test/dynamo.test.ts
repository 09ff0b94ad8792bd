import { ConditionalCheckFailedException, TransactionCanceledException, TransactionInProgressException } from '@aws-sdk/client-dynamodb';
import { cancellationReasons, isConditionFailed, isTransactionConflict, isTransientDynamoFailure } from '../src';

const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: `Transaction cancelled [${codes.join(', ')}]`,
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

describe('telling DynamoDB failures apart', () => {
  it('a cancelled transaction is a failed condition only when an item says ConditionalCheckFailed', () => {
    expect(isConditionFailed(cancelled('ConditionalCheckFailed', 'None'))).toBe(true);
    expect(isConditionFailed(cancelled('None', 'ConditionalCheckFailed', 'TransactionConflict'))).toBe(true);
    expect(isConditionFailed(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }))).toBe(true);
    for (const code of ['ThrottlingError', 'TransactionConflict', 'ProvisionedThroughputExceeded', 'ValidationError']) {
      expect(isConditionFailed(cancelled('None', code))).toBe(false);
    }
    expect(isConditionFailed(new Error('ConditionalCheckFailed'))).toBe(false);
  });

  it('throttled or conflicting transactions, and what the SDK calls throttling or transient, are transient', () => {
    expect(isTransientDynamoFailure(cancelled('ThrottlingError', 'None'))).toBe(true);
    expect(isTransientDynamoFailure(cancelled('None', 'ProvisionedThroughputExceeded'))).toBe(true);
    expect(isTransientDynamoFailure(cancelled('TransactionConflict'))).toBe(true);
    expect(isTransientDynamoFailure(new TransactionInProgressException({ message: 'busy', $metadata: { httpStatusCode: 400 } }))).toBe(true);
    expect(isTransientDynamoFailure(Object.assign(new Error('slow down'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }))).toBe(true);
    expect(isTransientDynamoFailure(Object.assign(new Error('oops'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }))).toBe(true);
    expect(isTransientDynamoFailure(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    // Not transient: a real condition failure (even beside a conflict), a bad request.
    expect(isTransientDynamoFailure(cancelled('ConditionalCheckFailed', 'TransactionConflict'))).toBe(false);
    expect(isTransientDynamoFailure(cancelled('ValidationError'))).toBe(false);
    expect(isTransientDynamoFailure(Object.assign(new Error('bad'), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } }))).toBe(false);
    expect(isTransientDynamoFailure(undefined)).toBe(false);
  });

  it('reads the per-item reasons in request order, and spots a pure transaction conflict', () => {
    expect(cancellationReasons(cancelled('None', 'ConditionalCheckFailed'))).toEqual(['None', 'ConditionalCheckFailed']);
    expect(cancellationReasons(new Error('x'))).toBeUndefined();
    expect(isTransactionConflict(cancelled('TransactionConflict', 'None'))).toBe(true);
    expect(isTransactionConflict(cancelled('TransactionConflict', 'ConditionalCheckFailed'))).toBe(false);
    expect(isTransactionConflict(cancelled('ThrottlingError'))).toBe(false);
  });
});
