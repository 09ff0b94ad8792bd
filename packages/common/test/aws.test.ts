import { S3ServiceException } from '@aws-sdk/client-s3';
import { isDependencyOutage } from '../src/aws';

/** An error as the SDK raises it for an S3 answer. */
const s3Error = (name: string, httpStatusCode: number, fault: 'client' | 'server' = httpStatusCode >= 500 ? 'server' : 'client') =>
  new S3ServiceException({ name, $fault: fault, $metadata: { httpStatusCode }, message: name });

describe('isDependencyOutage: transient failures (503 + Retry-After) apart from permanent ones', () => {
  it.each([
    ['SlowDown (503)', s3Error('SlowDown', 503)],
    ['InternalError (500)', s3Error('InternalError', 500)],
    ['ServiceUnavailable (503)', s3Error('ServiceUnavailable', 503)],
    ['a throttled request (429)', s3Error('TooManyRequestsException', 429)],
    ['ThrottlingException', s3Error('ThrottlingException', 400)],
    ['the SDK timing out', Object.assign(new Error('socket timed out'), { name: 'TimeoutError' })],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['an outage wrapped as a cause', new Error('upload failed', { cause: s3Error('SlowDown', 503) })],
  ])('%s is transient', (_label, err) => {
    expect(isDependencyOutage(err)).toBe(true);
  });

  it.each([
    ['AccessDenied (403)', s3Error('AccessDenied', 403)],
    ['NoSuchBucket (404)', s3Error('NoSuchBucket', 404)],
    ['NoSuchKey (404)', s3Error('NoSuchKey', 404)],
    ['metadata too large (400)', s3Error('MetadataTooLarge', 400)],
    ['InvalidArgument (400)', s3Error('InvalidArgument', 400)],
    ['a disabled KMS key', s3Error('KMS.DisabledException', 400)],
    ['NotImplemented (501)', s3Error('NotImplemented', 501)],
    ['a bug', new TypeError('x is undefined')],
    ['an aborted request', Object.assign(new Error('aborted'), { name: 'AbortError' })],
    ['nothing', undefined],
  ])('%s is permanent: no retry will fix it', (_label, err) => {
    expect(isDependencyOutage(err)).toBe(false);
  });
});
