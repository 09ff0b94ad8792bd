import {
  CreateTableCommand,
  DescribeTableCommand,
  type KeySchemaElement,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, EnableKeyRotationCommand } from '@aws-sdk/client-kms';
import {
  type CORSRule,
  CreateBucketCommand,
  PutBucketCorsCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  type ServerSideEncryptionRule,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import {
  type AwsClients,
  deadLetterQueueName,
  ensureSigningKey,
  FILE_KEY_PREFIX,
  STAGING_KEY_PREFIX,
  isNotFound,
  resourceNameProperties,
  TABLE_SPECS,
  type TableSpec,
} from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';

export const ResourceNames = Type.Object({
  ...resourceNameProperties,
  JWT_PUBLIC_KEYS_PARAM: Type.String({ default: '/scs/auth/jwt-public-keys', pattern: '^/' }),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ default: 900, minimum: 60 }),
  /** The site's origins (the dev gateway's, comma-separated): the only origins the primary bucket's CORS rule admits. */
  SITE_ORIGINS: Type.String({ default: 'http://localhost:8080,http://127.0.0.1:8080', pattern: '^https?://[^/,]+(,https?://[^/,]+)*$' }),
});
export type ResourceNames = Static<typeof ResourceNames>;

export interface ProvisionLog {
  info(msg: string): void;
}

/**
 * Creates every local resource the services need, idempotently: KMS keys and aliases, the three
 * buckets (versioning, default encryption, public access block, ACLs off, multipart clean-up),
 * the event wiring (see `wireEvents`), the DynamoDB tables, and the first JWT signing key
 * (private key as a SecureString under the secrets key). Running it again changes nothing that
 * exists. The integration tests' global setup runs the same code.
 */
export async function provision(aws: AwsClients, names: ResourceNames, log: ProvisionLog = { info: () => {} }): Promise<void> {
  const [sensitiveKey, backupKey, secretsKey] = await Promise.all([
    ensureKmsKey(aws, names.SENSITIVE_KMS_KEY_ID, 'Sensitive bucket objects'),
    ensureKmsKey(aws, names.BACKUP_KMS_KEY_ID, 'Backup bucket objects'),
    ensureKmsKey(aws, names.SECRETS_KMS_KEY_ID, 'Application secrets (SSM SecureString)'),
  ]);
  log.info(`kms keys ready (${names.SENSITIVE_KMS_KEY_ID}, ${names.BACKUP_KMS_KEY_ID}, ${names.SECRETS_KMS_KEY_ID})`);

  await ensureBucket(aws, names.PRIMARY_BUCKET, { SSEAlgorithm: 'AES256' });
  await aws.s3.send(new PutBucketCorsCommand({ Bucket: names.PRIMARY_BUCKET, CORSConfiguration: { CORSRules: [primaryCorsRule(names.SITE_ORIGINS.split(','))] } }));
  await ensureBucket(aws, names.SENSITIVE_BUCKET, { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: sensitiveKey });
  await ensureBucket(aws, names.BACKUP_BUCKET, { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: backupKey });
  log.info(`buckets ready (${names.PRIMARY_BUCKET}, ${names.SENSITIVE_BUCKET}, ${names.BACKUP_BUCKET})`);
  await wireEvents(aws, names);
  log.info(`events wired (${names.PRIMARY_BUCKET} -> ${names.OBJECT_EVENTS_QUEUE}; both file buckets -> EventBridge -> ${names.BACKUP_EVENTS_QUEUE})`);

  await Promise.all(
    (Object.keys(TABLE_SPECS) as (keyof typeof TABLE_SPECS)[]).map((k) => ensureTable(aws.dynamo, names[k], TABLE_SPECS[k])),
  );
  log.info('tables ready');

  const key = await ensureSigningKey(
    aws.ssm,
    { signingKeyParam: names.JWT_SIGNING_KEY_PARAM, publicKeysParam: names.JWT_PUBLIC_KEYS_PARAM },
    { kmsKeyId: secretsKey, retainSeconds: names.ACCESS_TOKEN_TTL_SECONDS + 300 },
  );
  log.info(`jwt signing key ${key.created ? 'created' : 'present'} (kid ${key.kid})`);
}

/**
 * The primary bucket's one CORS rule, as terraform/storage.tf gives it on AWS (`primary_cors_rule`):
 * the site's origin only, the methods the browser uses on the bucket (POST of a direct upload's
 * form, PUT of a resumable upload's part, GET), no request header beyond the safelisted ones but
 * a part's signed `x-amz-checksum-sha256` and its Content-Type, the ETag readable by the page.
 */
export function primaryCorsRule(origins: string[]): CORSRule {
  return {
    AllowedOrigins: origins,
    AllowedMethods: ['GET', 'POST', 'PUT'],
    AllowedHeaders: ['x-amz-checksum-sha256', 'content-type'],
    ExposeHeaders: ['ETag'],
    MaxAgeSeconds: 3000,
  };
}

type EventNames = Pick<ResourceNames, 'PRIMARY_BUCKET' | 'SENSITIVE_BUCKET' | 'OBJECT_EVENTS_QUEUE' | 'BACKUP_EVENTS_QUEUE'>;

/**
 * The event pipeline, as Terraform builds it on AWS:
 * - the primary bucket notifies `s3:ObjectCreated:*` under `users/` and `incoming/` to
 *   OBJECT_EVENTS_QUEUE (on AWS the sensitive-mover Lambda directly; locally its runner polls this
 *   queue);
 * - the primary and sensitive buckets send their events to EventBridge, where one rule on the
 *   default bus (source aws.s3, Object Created / Object Deleted, those two buckets, keys under
 *   `users/`) targets BACKUP_EVENTS_QUEUE, which backup-sync consumes.
 * Both queues have a dead-letter queue (maxReceiveCount 5). The rule is named after its queue.
 */
export async function wireEvents(aws: AwsClients, names: EventNames): Promise<void> {
  const objectEvents = await ensureQueue(aws, names.OBJECT_EVENTS_QUEUE);
  const backupEvents = await ensureQueue(aws, names.BACKUP_EVENTS_QUEUE);
  await aws.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: names.PRIMARY_BUCKET,
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            Id: 'sensitive-mover',
            QueueArn: objectEvents.arn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: FILE_KEY_PREFIX }] } },
          },
          {
            // A direct upload's form posted again after /complete: the mover removes the late bytes.
            Id: 'sensitive-mover-staging',
            QueueArn: objectEvents.arn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: STAGING_KEY_PREFIX }] } },
          },
        ],
        EventBridgeConfiguration: {},
      },
    }),
  );
  await aws.s3.send(
    new PutBucketNotificationConfigurationCommand({ Bucket: names.SENSITIVE_BUCKET, NotificationConfiguration: { EventBridgeConfiguration: {} } }),
  );
  const rule = await aws.events.send(
    new PutRuleCommand({
      Name: names.BACKUP_EVENTS_QUEUE,
      Description: 'File objects created or deleted in the primary and sensitive buckets, for backup-sync',
      EventPattern: JSON.stringify({
        source: ['aws.s3'],
        'detail-type': ['Object Created', 'Object Deleted'],
        detail: { bucket: { name: [names.PRIMARY_BUCKET, names.SENSITIVE_BUCKET] }, object: { key: [{ prefix: FILE_KEY_PREFIX }] } },
      }),
    }),
  );
  await aws.events.send(new PutTargetsCommand({ Rule: names.BACKUP_EVENTS_QUEUE, Targets: [{ Id: 'backup-events-queue', Arn: backupEvents.arn }] }));
  // Only this rule may send to the queue (the emulator does not check; AWS does).
  await aws.sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: backupEvents.url,
      Attributes: {
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'EventBridgeRule',
              Effect: 'Allow',
              Principal: { Service: 'events.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: backupEvents.arn,
              Condition: { ArnEquals: { 'aws:SourceArn': rule.RuleArn } },
            },
          ],
        }),
      },
    }),
  );
}

/** Returns the key id behind an alias, creating the key (rotation on) and alias when missing. */
async function ensureKmsKey(aws: AwsClients, alias: string, description: string): Promise<string> {
  try {
    const out = await aws.kms.send(new DescribeKeyCommand({ KeyId: alias }));
    if (out.KeyMetadata?.KeyId) return out.KeyMetadata.KeyId;
  } catch (err) {
    if (!isNotFound(err) && (err as { name?: string }).name !== 'NotFoundException') throw err;
  }
  const created = await aws.kms.send(new CreateKeyCommand({ Description: description }));
  const keyId = created.KeyMetadata?.KeyId;
  if (!keyId) throw new Error(`KMS did not return a key id for ${alias}`);
  await aws.kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
  if (alias.startsWith('alias/')) {
    await aws.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
  }
  return keyId;
}

async function ensureQueue(aws: AwsClients, name: string): Promise<{ url: string; arn: string }> {
  const dlq = await aws.sqs.send(new CreateQueueCommand({ QueueName: deadLetterQueueName(name), Attributes: { MessageRetentionPeriod: '1209600' } }));
  const dlqArn = await queueArn(aws, dlq.QueueUrl);
  const queue = await aws.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '60' } }));
  if (!queue.QueueUrl) throw new Error(`SQS did not return a URL for ${name}`);
  await aws.sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queue.QueueUrl,
      Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 5 }) },
    }),
  );
  return { url: queue.QueueUrl, arn: await queueArn(aws, queue.QueueUrl) };
}

async function queueArn(aws: AwsClients, url: string | undefined): Promise<string> {
  const out = await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new Error(`SQS did not return an ARN for ${url}`);
  return arn;
}

async function ensureBucket(aws: AwsClients, bucket: string, sse: ServerSideEncryptionRule['ApplyServerSideEncryptionByDefault']): Promise<void> {
  try {
    await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  }
  await aws.s3.send(
    new PutPublicAccessBlockCommand({
      Bucket: bucket,
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
    }),
  );
  await aws.s3.send(
    new PutBucketOwnershipControlsCommand({ Bucket: bucket, OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] } }),
  );
  await aws.s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  await aws.s3.send(
    new PutBucketEncryptionCommand({
      Bucket: bucket,
      ServerSideEncryptionConfiguration: {
        Rules: [{ ApplyServerSideEncryptionByDefault: sse, BucketKeyEnabled: sse?.SSEAlgorithm === 'aws:kms' }],
      },
    }),
  );
  await aws.s3.send(
    new PutBucketLifecycleConfigurationCommand({
      Bucket: bucket,
      LifecycleConfiguration: {
        Rules: [
          {
            ID: 'abort-incomplete-multipart-uploads',
            Status: 'Enabled',
            Filter: { Prefix: '' },
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          },
        ],
      },
    }),
  );
}

/** Creates table `name` as `spec` says (with TTL on its attribute) unless it exists; the document client sends the table commands as they are. */
async function ensureTable(dynamo: DynamoDBDocumentClient, name: string, spec: TableSpec): Promise<void> {
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: name }));
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const keys: KeySchemaElement[] = [{ AttributeName: spec.hashKey, KeyType: 'HASH' }];
  if (spec.rangeKey) keys.push({ AttributeName: spec.rangeKey, KeyType: 'RANGE' });
  const attributes = new Map<string, 'S'>();
  for (const k of keys) if (k.AttributeName) attributes.set(k.AttributeName, 'S');
  for (const ix of spec.indexes ?? []) {
    attributes.set(ix.hashKey, 'S');
    if (ix.rangeKey) attributes.set(ix.rangeKey, 'S');
  }
  try {
    await dynamo.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: keys,
        AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
        ...(spec.indexes?.length
          ? {
              GlobalSecondaryIndexes: spec.indexes.map((ix) => ({
                IndexName: ix.name,
                KeySchema: [
                  { AttributeName: ix.hashKey, KeyType: 'HASH' as const },
                  ...(ix.rangeKey ? [{ AttributeName: ix.rangeKey, KeyType: 'RANGE' as const }] : []),
                ],
                Projection: { ProjectionType: 'ALL' as const },
              })),
            }
          : {}),
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceInUseException') throw err;
  }
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 60 }, { TableName: name });
  if (spec.ttlAttribute) {
    await dynamo.send(
      new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: spec.ttlAttribute, Enabled: true } }),
    );
  }
}
