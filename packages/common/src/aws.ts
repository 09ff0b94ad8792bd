import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isTransientDynamoFailure } from './dynamo';

export interface AwsSettings {
  AWS_REGION: string;
  AWS_ENDPOINT_URL?: string | undefined;
  AWS_MAX_ATTEMPTS: number;
  AWS_REQUEST_TIMEOUT_MS: number;
  /** Connection timeout, in ms (default 3000). */
  AWS_CONNECT_TIMEOUT_MS?: number;
}

/** One client per AWS service, created once per process and injected; no I/O at construction. */
export interface AwsClients {
  s3: S3Client;
  dynamo: DynamoDBDocumentClient;
  ssm: SSMClient;
  kms: KMSClient;
  sqs: SQSClient;
  events: EventBridgeClient;
  destroy(): void;
}

/**
 * Builds the clients from the SDK's standard configuration: the default credential chain (never
 * static keys), the region, and `AWS_ENDPOINT_URL` when set (the local emulator, which also needs
 * path-style S3 addressing). Retries and socket timeouts are explicit so an outage turns into a
 * prompt 503 instead of a hung request.
 */
export function createAwsClients(settings: AwsSettings): AwsClients {
  const requestHandler = new NodeHttpHandler({
    connectionTimeout: settings.AWS_CONNECT_TIMEOUT_MS ?? 3_000,
    requestTimeout: settings.AWS_REQUEST_TIMEOUT_MS,
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 128 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 128 }),
  });
  const common = {
    region: settings.AWS_REGION,
    maxAttempts: settings.AWS_MAX_ATTEMPTS,
    retryMode: 'standard',
    requestHandler,
    ...(settings.AWS_ENDPOINT_URL ? { endpoint: settings.AWS_ENDPOINT_URL } : {}),
  } as const;
  const dynamoBase = new DynamoDBClient(common);
  const clients: AwsClients = {
    s3: new S3Client({ ...common, forcePathStyle: Boolean(settings.AWS_ENDPOINT_URL) }),
    dynamo: DynamoDBDocumentClient.from(dynamoBase, {
      marshallOptions: { removeUndefinedValues: true },
    }),
    ssm: new SSMClient(common),
    kms: new KMSClient(common),
    sqs: new SQSClient(common),
    events: new EventBridgeClient(common),
    destroy() {
      clients.s3.destroy();
      dynamoBase.destroy();
      clients.ssm.destroy();
      clients.kms.destroy();
      clients.sqs.destroy();
      clients.events.destroy();
    },
  };
  return clients;
}

/** Connection failures that some SDK paths report only in the message of a wrapped error. */
const NETWORK_FAILURE_MESSAGE = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b|socket hang up/;

/**
 * True when an error means "a dependency is down, overloaded or too slow right now", so that a
 * later retry may succeed: the client gets 503 with Retry-After. The SDK's own classification
 * decides (`isTransientError`: timeouts, HTTP 500/502/503/504, connection refused or reset,
 * `$retryable`; `isThrottlingError`: 429, SlowDown, ThrottlingException, ...), following `cause`.
 *
 * Everything else is permanent and must not be answered as "retry shortly": AccessDenied,
 * NoSuchBucket, NoSuchKey, validation errors, a disabled or missing KMS key, a request S3 finds
 * too large. Those are logged with their cause and answered as what they are.
 */
export function isDependencyOutage(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 10) return false;
  // The SDK's classification, and DynamoDB transactions cancelled only for throttling or conflicts.
  if (isTransientDynamoFailure(err)) return true;
  const e = err as { message?: string; $metadata?: unknown; cause?: unknown };
  // The SDK wraps errors that are not `instanceof Error` in its realm, keeping only the message.
  if (e.$metadata && typeof e.message === 'string' && NETWORK_FAILURE_MESSAGE.test(e.message)) return true;
  return e.cause !== undefined && e.cause !== err && isDependencyOutage(e.cause, depth + 1);
}

/** True for the SDK's "this key/item does not exist" family of errors. */
export function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'ParameterNotFound' || name === 'ResourceNotFoundException';
}

/**
 * True when an S3 object or version is not there (any more): no such key or version, or a
 * delete marker where a version was asked for (405).
 */
export function isObjectGone(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  const status = e?.$metadata?.httpStatusCode;
  return isNotFound(err) || e?.name === 'NoSuchVersion' || status === 404 || status === 405;
}
