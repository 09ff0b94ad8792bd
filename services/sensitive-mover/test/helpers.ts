import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { AwsClients } from '@scs/common';
import { deadLetterQueueName } from '@scs/common';
import { ServerSideCopier, type ServerSideCopierOptions } from '@scs/common/s3-copy';
import { type FileRecord, FileRepository } from '@scs/common/files';
import { createHash, randomUUID } from 'node:crypto';
import pino from 'pino';
import { isolatedResources, testAwsClients } from '@scs/testing/isolated';
import type { ResourceNames } from '@scs/local-stack/provision';
import { SensitiveMover } from '../src/mover';

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
export const silent = pino({ level: 'silent' });

export interface MoverWorld {
  names: ResourceNames;
  aws: AwsClients;
  files: FileRepository;
  queueUrl: string;
  dlqUrl: string;
  /** A mover on these resources; `aws` lets a test pass clients with a fault injected. */
  mover(opts?: { aws?: AwsClients; waitMs?: number; copier?: ServerSideCopierOptions; sensitiveBucket?: string }): SensitiveMover;
  close(): void;
}

export async function moverWorld(tag: string): Promise<MoverWorld> {
  const names = await isolatedResources(tag);
  const aws = testAwsClients();
  const files = new FileRepository(aws.dynamo, names.FILES_TABLE, silent);
  const url = async (name: string) => (await aws.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
  return {
    names,
    aws,
    files,
    queueUrl: await url(names.OBJECT_EVENTS_QUEUE),
    dlqUrl: await url(deadLetterQueueName(names.OBJECT_EVENTS_QUEUE)),
    mover: (opts = {}) => {
      const clients = opts.aws ?? aws;
      return new SensitiveMover(
        { ...names, SENSITIVE_BUCKET: opts.sensitiveBucket ?? names.SENSITIVE_BUCKET, MOVER_RECORD_WAIT_MS: opts.waitMs ?? 5_000 },
        {
          s3: clients.s3,
          copier: new ServerSideCopier(clients.s3, clients.kms, opts.copier),
          files: new FileRepository(clients.dynamo, names.FILES_TABLE, silent),
          log: silent,
        },
      );
    },
    close: () => aws.destroy(),
  };
}

export interface StoredFile {
  key: string;
  versionId: string;
  record: FileRecord;
  content: Buffer;
}

/**
 * A file as the upload service stores it: the object in one request (tags, type, disposition,
 * SSE-S3, owner metadata), or with `parts` as a resumable upload makes it (a multipart upload whose
 * parts carry their SHA-256, so the object has a composite SHA-256); then the sha256 tag, then the
 * record (each step can be left out).
 */
export async function storeFile(
  world: MoverWorld,
  opts: { sensitive?: boolean; content?: Buffer; parts?: Buffer[]; userId?: string; fileId?: string; tag?: boolean; record?: boolean } = {},
): Promise<StoredFile> {
  const userId = opts.userId ?? randomUUID();
  const fileId = opts.fileId ?? randomUUID();
  const content = opts.parts ? Buffer.concat(opts.parts) : (opts.content ?? Buffer.from(`content of ${fileId}`));
  const sensitive = opts.sensitive ?? true;
  const key = `users/${userId}/${fileId}`;
  const object = {
    Bucket: world.names.PRIMARY_BUCKET,
    Key: key,
    ContentType: 'text/plain',
    ContentDisposition: `attachment; filename="notes.txt"; filename*=UTF-8''notes.txt`,
    ServerSideEncryption: 'AES256' as const,
    Tagging: `sensitive=${sensitive}`,
    Metadata: { owner: userId, 'file-id': encodeURIComponent(fileId) },
  };
  const put = opts.parts ? await uploadInParts(world.aws.s3, object, opts.parts) : await world.aws.s3.send(new PutObjectCommand({ ...object, Body: content }));
  const digest = sha256(content);
  if (opts.tag !== false) {
    await world.aws.s3.send(
      new PutObjectTaggingCommand({
        Bucket: world.names.PRIMARY_BUCKET,
        Key: key,
        Tagging: { TagSet: [{ Key: 'sensitive', Value: String(sensitive) }, { Key: 'sha256', Value: digest }] },
      }),
    );
  }
  const record: FileRecord = {
    userId,
    fileId,
    name: 'notes.txt',
    size: content.length,
    contentType: 'text/plain',
    sha256: digest,
    sensitive,
    status: 'active',
    key,
    createdAt: new Date().toISOString(),
  };
  if (opts.record !== false) await world.files.createActive(record, 0);
  return { key, versionId: put.VersionId as string, record, content };
}

/** A multipart upload with SHA-256 part checksums, as the upload service's resumable uploads make one. */
async function uploadInParts(s3: S3Client, object: { Bucket: string; Key: string } & Record<string, unknown>, parts: Buffer[]) {
  const { Bucket, Key } = object;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ ...object, ChecksumAlgorithm: 'SHA256' }));
  const done = [];
  for (const [i, Body] of parts.entries()) {
    const ChecksumSHA256 = createHash('sha256').update(Body).digest('base64');
    const out = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256 }));
    done.push({ PartNumber: i + 1, ETag: out.ETag, ChecksumSHA256 });
  }
  return s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: done } }));
}

/** The next `count` notifications on a queue (S3's test event skipped), deleted from it. */
export async function nextEvents(sqs: SQSClient, queueUrl: string, count: number, timeoutMs = 20_000): Promise<unknown[]> {
  const events: unknown[] = [];
  const deadline = Date.now() + timeoutMs;
  while (events.length < count && Date.now() < deadline) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of out.Messages ?? []) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
      const body = JSON.parse(m.Body ?? '{}') as { Event?: string };
      if (body.Event !== 's3:TestEvent') events.push(body);
    }
  }
  if (events.length < count) throw new Error(`expected ${count} events on ${queueUrl}, got ${events.length}`);
  return events;
}

/** Every version and delete marker of one key. */
export async function versionsOf(s3: S3Client, bucket: string, key: string) {
  const out = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return {
    versions: (out.Versions ?? []).filter((v) => v.Key === key),
    deleteMarkers: (out.DeleteMarkers ?? []).filter((m) => m.Key === key),
  };
}

export async function bodyOf(s3: S3Client, bucket: string, key: string, versionId?: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/**
 * Clients whose S3 calls fail when `fault` says so (before they are sent: a crash or a refusal
 * the emulator cannot produce on demand). Everything else goes to the emulator.
 */
export function faultyClients(fault: (command: string, input: Record<string, unknown>) => Error | undefined): AwsClients {
  const aws = testAwsClients(1);
  aws.s3.middlewareStack.add(
    (next, context) => async (args) => {
      const err = fault(context.commandName as string, args.input as Record<string, unknown>);
      if (err) throw err;
      return next(args);
    },
    { step: 'initialize', name: 'injectFault' },
  );
  return aws;
}

/** An S3-notification event for one version, as AWS sends it (key URL-encoded, version id present). */
export function s3Event(bucket: string, key: string, versionId?: string) {
  const encoded = encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        s3: { s3SchemaVersion: '1.0', bucket: { name: bucket }, object: { key: encoded, ...(versionId ? { versionId } : {}) } },
      },
    ],
  };
}
