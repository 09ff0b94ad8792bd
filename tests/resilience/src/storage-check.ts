import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import {
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { paginateQuery } from '@aws-sdk/lib-dynamodb';
import { type AwsClients, FILE_KEY_PREFIX, isNotFound } from '@scs/common';
import { fileKey, PENDING_KEY_PREFIX, RESERVATION_KEY_PREFIX, STAGING_KEY_PREFIX, USAGE_SORT_KEY } from '@scs/common/files';
import { paginateObjectVersions } from '@scs/common/s3-versions';
import { createHash } from 'node:crypto';
import type { ResourceNames } from '@scs/local-stack/provision';
import type { LedgerEntry } from './ledger';
import { mapLimit } from './scenario';

/** Which parts of the event pipeline the stack runs (each adds its checks). */
export interface PipelineFeatures {
  /** The sensitive mover runs: sensitive files end in the sensitive bucket, none in primary. */
  mover: boolean;
  /** backup-sync makes backups: every file has a copy in the backup bucket. */
  backup: boolean;
}

/** What the ledger and the stores disagree on. */
export interface CheckOutcome {
  /** Files answered 201 that were checked. */
  checked: number;
  /** A 201 whose object, record or backup is missing or differs (one line each). */
  lost: string[];
  /** Something stored that no 201 accounts for: objects, records, backups, open multipart uploads, staged objects, quota (one line each). */
  phantom: string[];
}

interface Version {
  key: string;
  versionId: string;
  latest: boolean;
  deleteMarker: boolean;
}

/**
 * Compares the ledger with what the stores hold, straight from the emulator (not through the
 * product): for every 201 exactly one current object where the file belongs, with the size and
 * SHA-256 of the bytes sent, its metadata record, and its backup; for the users involved, nothing
 * else: no other object, record, backup, open multipart upload or staged object, and the quota's
 * used bytes equal to the files' sizes. With `digests` (the final pass) every object is read back
 * and hashed, and the primary bucket's versions are listed too: no version of a sensitive file
 * and no noncurrent version of a failed upload may remain there.
 */
export class StorageCheck {
  private keyArns: Promise<{ sensitive: Set<string>; backup: Set<string> }> | undefined;

  constructor(
    private readonly aws: AwsClients,
    private readonly names: ResourceNames,
  ) {}

  async check(
    entries: LedgerEntry[],
    opts: {
      features: PipelineFeatures;
      /** Read every object back and hash it (slow), instead of trusting sizes alone. */
      digests: boolean;
      /** The used bytes the product counts for a user. */
      usedBytes: (userId: string) => Promise<number>;
    },
  ): Promise<CheckOutcome> {
    const users = [...new Set(entries.map((e) => e.userId))];
    const outcome: CheckOutcome = { checked: 0, lost: [], phantom: [] };
    await mapLimit(users, 4, async (userId) => {
      const mine = entries.filter((e) => e.userId === userId);
      const part = await this.checkUser(userId, mine, opts);
      outcome.checked += part.checked;
      outcome.lost.push(...part.lost);
      outcome.phantom.push(...part.phantom);
    });
    return outcome;
  }

  private async checkUser(
    userId: string,
    entries: LedgerEntry[],
    opts: { features: PipelineFeatures; digests: boolean; usedBytes: (userId: string) => Promise<number> },
  ): Promise<CheckOutcome> {
    const { features } = opts;
    const n = this.names;
    const prefix = `${FILE_KEY_PREFIX}${userId}/`;
    const [primary, sensitive, backup, { files: records, reservedBytes, reservedFiles, reservations }, uploads, staged] = await Promise.all([
      // Versions only in the final pass: listing them costs the emulator a copy of every version's bytes.
      opts.digests ? this.versions(n.PRIMARY_BUCKET, prefix) : this.current(n.PRIMARY_BUCKET, prefix),
      this.current(n.SENSITIVE_BUCKET, prefix),
      this.currentKeys(n.BACKUP_BUCKET, prefix),
      this.records(userId),
      this.openUploads(n.PRIMARY_BUCKET, userId),
      this.currentKeys(n.PRIMARY_BUCKET, `${STAGING_KEY_PREFIX}${userId}/`),
    ]);
    const lost: string[] = [];
    const phantom: string[] = [];
    const stored = entries.filter((e) => e.status === 201);
    const storedIds = new Set(stored.map((e) => e.fileId ?? ''));
    const current = (versions: Version[], key: string) => versions.some((v) => v.key === key && v.latest && !v.deleteMarker);

    await mapLimit(stored, 4, async (e) => {
      const where = `${e.label} #${e.request} (user ${userId}, file ${e.fileId ?? '?'})`;
      if (!e.fileId) return void lost.push(`${where}: 201 without an id`);
      if (e.mismatch) lost.push(`${where}: ${e.mismatch}, sent size ${e.size} sha256 ${e.sha256}`);
      const key = fileKey(userId, e.fileId);
      const inPrimary = current(primary, key);
      const inSensitive = current(sensitive, key);
      const movesToVault = features.mover && e.sensitive;
      const expectedBucket = movesToVault ? n.SENSITIVE_BUCKET : n.PRIMARY_BUCKET;
      if (inPrimary && inSensitive) lost.push(`${where}: a current object in both the primary and the sensitive bucket`);
      if (!(movesToVault ? inSensitive : inPrimary)) {
        lost.push(`${where}: no current object in ${expectedBucket}${inPrimary || inSensitive ? ` (it is in ${inPrimary ? n.PRIMARY_BUCKET : n.SENSITIVE_BUCKET})` : ''}`);
      } else {
        const problem = await this.compareObject(expectedBucket, key, e, opts.digests, movesToVault ? 'sensitive' : undefined);
        if (problem) lost.push(`${where}: ${expectedBucket}: ${problem}`);
      }
      if (movesToVault) {
        const left = primary.filter((v) => v.key === key && !v.deleteMarker).length;
        if (left > 0) lost.push(`${where}: sensitive, yet ${left} version(s) of it remain in ${n.PRIMARY_BUCKET}`);
      }

      const record = records.get(e.fileId);
      if (!record) lost.push(`${where}: no record in ${n.FILES_TABLE}`);
      else {
        const differences = [
          record.status !== 'active' ? `status ${String(record.status)}` : '',
          record.size !== e.size ? `size ${String(record.size)}` : '',
          record.sha256 !== e.sha256 ? `sha256 ${String(record.sha256)}` : '',
          record.sensitive !== e.sensitive ? `sensitive ${String(record.sensitive)}` : '',
          features.mover && record.location !== undefined && record.location !== (movesToVault ? 'sensitive' : 'primary') ? `location ${String(record.location)}` : '',
        ].filter(Boolean);
        if (differences.length) lost.push(`${where}: the record differs: ${differences.join(', ')}`);
      }

      if (features.backup) {
        if (!backup.has(key)) lost.push(`${where}: no backup in ${n.BACKUP_BUCKET}`);
        else {
          const problem = await this.compareObject(n.BACKUP_BUCKET, key, e, opts.digests, e.sensitive ? 'sensitive' : 'backup');
          if (problem) lost.push(`${where}: ${n.BACKUP_BUCKET}: ${problem}`);
        }
      }
    });
    const checked = stored.length;

    // What no 201 accounts for.
    const idOf = (key: string) => key.slice(prefix.length);
    for (const [bucket, versions] of [
      [n.PRIMARY_BUCKET, primary],
      [n.SENSITIVE_BUCKET, sensitive],
    ] as const) {
      for (const v of versions) {
        if (v.deleteMarker) continue;
        const id = idOf(v.key);
        if (!storedIds.has(id)) {
          phantom.push(`${bucket}/${v.key}${v.latest ? '' : ` (noncurrent version ${v.versionId})`}: no 201 for file ${id} of user ${userId}`);
        }
      }
    }
    if (features.backup) {
      for (const key of backup) if (!storedIds.has(idOf(key))) phantom.push(`${n.BACKUP_BUCKET}/${key}: a backup of a file no 201 accounts for`);
    }
    for (const [fileId, record] of records) {
      if (!storedIds.has(fileId)) phantom.push(`${n.FILES_TABLE} ${userId}/${fileId}: a record (${String(record.status)}) no 201 accounts for`);
    }
    for (const u of uploads) phantom.push(`${n.PRIMARY_BUCKET}/${u}: an open multipart upload`);
    for (const key of staged) phantom.push(`${n.PRIMARY_BUCKET}/${key}: a staged object left`);
    const expectedBytes = stored.reduce((sum, e) => sum + e.size, 0);
    const used = await opts.usedBytes(userId);
    if (used !== expectedBytes) phantom.push(`user ${userId}: the quota counts ${used} bytes, the files stored hold ${expectedBytes}`);
    if (reservedBytes !== 0) phantom.push(`user ${userId}: ${reservedBytes} bytes of quota still reserved with no upload under way`);
    if (reservations !== 0) phantom.push(`user ${userId}: ${reservations} quota reservation item(s) left with no upload under way`);
    if (reservedFiles !== 0) phantom.push(`user ${userId}: ${reservedFiles} files of the file count still reserved with no upload under way`);
    return { checked, lost, phantom };
  }

  /** Size, digest (when asked) and encryption of one object against the ledger; undefined when all agree. */
  private async compareObject(
    bucket: string,
    key: string,
    e: LedgerEntry,
    digests: boolean,
    kmsKey: 'sensitive' | 'backup' | undefined,
  ): Promise<string | undefined> {
    let head: HeadObjectCommandOutput;
    try {
      head = await this.aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) return 'the object vanished while being checked';
      throw err;
    }
    if (head.ContentLength !== e.size) return `size ${head.ContentLength}, sent ${e.size}`;
    if (kmsKey) {
      const arns = await this.kmsKeys();
      if (head.ServerSideEncryption !== 'aws:kms' || !head.SSEKMSKeyId || !arns[kmsKey].has(head.SSEKMSKeyId)) {
        return `encrypted with ${head.ServerSideEncryption ?? 'nothing'} ${head.SSEKMSKeyId ?? ''}, not the ${kmsKey} KMS key`;
      }
    } else if (head.ServerSideEncryption !== 'AES256') {
      return `encrypted with ${head.ServerSideEncryption ?? 'nothing'}, not AES256`;
    }
    if (!digests) return undefined;
    const out = await this.aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of out.Body as AsyncIterable<Buffer>) hash.update(chunk);
    const sha256 = hash.digest('hex');
    return sha256 === e.sha256 ? undefined : `sha256 ${sha256}, sent ${e.sha256}`;
  }

  /** Every name a KMS key may be reported under (alias, key id, ARN), for the sensitive and the backup key. */
  private kmsKeys(): Promise<{ sensitive: Set<string>; backup: Set<string> }> {
    const names = async (keyId: string) => {
      const out = await this.aws.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      return new Set([keyId, out.KeyMetadata?.KeyId ?? '', out.KeyMetadata?.Arn ?? ''].filter(Boolean));
    };
    this.keyArns ??= (async () => ({
      sensitive: await names(this.names.SENSITIVE_KMS_KEY_ID),
      backup: await names(this.names.BACKUP_KMS_KEY_ID),
    }))();
    return this.keyArns;
  }

  private async versions(bucket: string, prefix: string): Promise<Version[]> {
    const found: Version[] = [];
    for await (const page of paginateObjectVersions(this.aws.s3, { Bucket: bucket, Prefix: prefix })) {
      for (const v of page.Versions ?? []) {
        found.push({ key: v.Key ?? '', versionId: v.VersionId ?? '', latest: Boolean(v.IsLatest), deleteMarker: false });
      }
      for (const m of page.DeleteMarkers ?? []) {
        found.push({ key: m.Key ?? '', versionId: m.VersionId ?? '', latest: Boolean(m.IsLatest), deleteMarker: true });
      }
    }
    return found;
  }

  /** The current objects under `prefix`, as versions marked latest (no version listing). */
  private async current(bucket: string, prefix: string): Promise<Version[]> {
    return [...(await this.currentKeys(bucket, prefix))].map((key) => ({ key, versionId: '', latest: true, deleteMarker: false }));
  }

  private async currentKeys(bucket: string, prefix: string): Promise<Set<string>> {
    const keys = new Set<string>();
    for await (const page of paginateListObjectsV2({ client: this.aws.s3 }, { Bucket: bucket, Prefix: prefix })) {
      for (const o of page.Contents ?? []) if (o.Key) keys.add(o.Key);
    }
    return keys;
  }

  /**
   * The user's file records by file id, the bytes and files its usage counter holds reserved for
   * uploads under way (the upload service's `#usage` item; 0 when there is none), and the
   * reservation items of streamed uploads (`#reservation#...`) still there.
   */
  private async records(
    userId: string,
  ): Promise<{ files: Map<string, Record<string, unknown>>; reservedBytes: number; reservedFiles: number; reservations: number }> {
    const found = new Map<string, Record<string, unknown>>();
    let reservedBytes = 0;
    let reservedFiles = 0;
    let reservations = 0;
    const pages = paginateQuery(
      { client: this.aws.dynamo },
      {
        TableName: this.names.FILES_TABLE,
        KeyConditionExpression: 'userId = :u',
        ExpressionAttributeValues: { ':u': userId },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        const stored = String(item.fileId ?? '');
        // A direct upload's record while it is pending sits under its own prefix (see PENDING_KEY_PREFIX).
        const fileId = stored.startsWith(PENDING_KEY_PREFIX) ? stored.slice(PENDING_KEY_PREFIX.length) : stored;
        if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(fileId)) found.set(fileId, item);
        else if (fileId === USAGE_SORT_KEY) {
          reservedBytes = Number(item.reservedBytes ?? 0);
          reservedFiles = Number(item.reservedFiles ?? 0);
        } else if (fileId.startsWith(RESERVATION_KEY_PREFIX)) reservations += 1;
      }
    }
    return { files: found, reservedBytes, reservedFiles, reservations };
  }

  /** Keys (with upload ids) of multipart uploads still open under the user's file and staging prefixes. */
  private async openUploads(bucket: string, userId: string): Promise<string[]> {
    const open: string[] = [];
    for (const prefix of [`${FILE_KEY_PREFIX}${userId}/`, `${STAGING_KEY_PREFIX}${userId}/`]) {
      let KeyMarker: string | undefined;
      let UploadIdMarker: string | undefined;
      for (;;) {
        const page = await this.aws.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, UploadIdMarker }));
        for (const u of page.Uploads ?? []) open.push(`${u.Key} (upload ${u.UploadId})`);
        if (!page.IsTruncated) break;
        KeyMarker = page.NextKeyMarker;
        UploadIdMarker = page.NextUploadIdMarker;
      }
    }
    return open;
  }
}
