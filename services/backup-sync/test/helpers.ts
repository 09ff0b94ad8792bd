import { HeadObjectCommand, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { type AwsClients, loadConfig } from '@scs/common';
import { FileRepository, UsageRepository } from '@scs/common/files';
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { buildTestApp as buildAuth, type TestApp as AuthApp, signedIn, uniqueName } from '@scs/testing/auth-app';
import { asEnv, isolatedResources, testAwsClients } from '@scs/testing/isolated';
import type { ResourceNames } from '@scs/local-stack/provision';
import { buildApp as buildUpload } from '@scs/upload';
import { UploadConfig } from '@scs/upload/config';
import { upload as uploadParts } from '@scs/testing/upload-app';
import { buildApp } from '../src/app';
import { BackupConfig } from '../src/config';

export { signedIn };

export interface BackupWorld {
  names: ResourceNames;
  aws: AwsClients;
  files: FileRepository;
  /** The usage counters (the one `files` settles with). */
  usage: UsageRepository;
  auth: AuthApp;
  uploadApp: FastifyInstance;
  /** A backup-sync app on these resources (closed by `close`); `aws` lets a test inject faults. */
  backupApp(overrides?: Record<string, string>, opts?: { aws?: AwsClients }): Promise<FastifyInstance>;
  /** A signed-in user: id and Authorization header. */
  user(): Promise<{ userId: string; headers: Record<string, string> }>;
  /** An admin's Authorization header. */
  admin(): Promise<Record<string, string>>;
  /** Uploads through the real upload service (tags, metadata, record, as the product stores files). */
  upload(
    headers: Record<string, string>,
    file: { name: string; content: Buffer; sensitive?: boolean },
  ): Promise<{ id: string; key: string; sha256: string; size: number; name: string }>;
  /**
   * Uploads through the upload service's resumable uploads (/api/files/uploads): the parts go to S3
   * through the presigned part URLs, each signed for its SHA-256, as a browser sends them; the
   * object then carries a composite SHA-256 and per-part SHA-256s.
   */
  uploadInParts(
    headers: Record<string, string>,
    file: { name: string; content: Buffer; contentType: string; sensitive?: boolean },
  ): Promise<{ id: string; key: string; sha256: string; size: number; partSize: number }>;
  close(): Promise<void>;
}

export function backupConfig(names: ResourceNames, overrides: Record<string, string> = {}): BackupConfig {
  return loadConfig(BackupConfig, { ...process.env, ...asEnv(names), LOG_LEVEL: 'silent', BACKUP_POLL_SECONDS: '1', BACKUP_RETRY_SECONDS: '1', BACKUP_RECORD_WAIT_MS: '200', ...overrides });
}

export async function backupWorld(tag: string, nameOverrides: Partial<Record<keyof ResourceNames, string>> = {}): Promise<BackupWorld> {
  const names = await isolatedResources(tag, nameOverrides);
  const aws = testAwsClients();
  const auth = await buildAuth({ LOG_LEVEL: 'silent' });
  const uploadApp = await buildUpload(loadConfig(UploadConfig, { ...process.env, ...asEnv(names), LOG_LEVEL: 'silent', UPLOADS_PER_MINUTE: '100000' }), { aws });
  const apps: FastifyInstance[] = [];
  let adminHeaders: Record<string, string> | undefined;
  const quiet = { warn: () => undefined, error: () => undefined };
  const usage = new UsageRepository(aws.dynamo, names.FILES_TABLE, quiet);
  return {
    names,
    aws,
    files: new FileRepository(aws.dynamo, names.FILES_TABLE, quiet, usage),
    usage,
    auth,
    uploadApp,
    async backupApp(overrides = {}, opts = {}) {
      const app = await buildApp(backupConfig(names, overrides), { aws: opts.aws ?? aws });
      apps.push(app);
      return app;
    },
    async user() {
      const s = await signedIn(auth.app);
      return { userId: s.userId, headers: { authorization: `Bearer ${s.accessToken}` } };
    },
    async admin() {
      if (adminHeaders) return adminHeaders;
      const username = uniqueName('admin');
      const password = 'an operator pass phrase for backups';
      await auth.app.authService.seedAdmin(username, password);
      const login = await auth.app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } });
      adminHeaders = { authorization: `Bearer ${login.json<{ accessToken: string }>().accessToken}` };
      return adminHeaders;
    },
    async upload(headers, file) {
      const res = await uploadParts(uploadApp, headers, [
        { name: 'sensitive', value: String(file.sensitive ?? false) },
        { name: 'file', filename: file.name, content: file.content },
      ]);
      if (res.statusCode !== 201) throw new Error(`upload failed: ${res.body}`);
      const body = res.json<{ id: string; sha256: string; size: number; name: string }>();
      const userId = JSON.parse(Buffer.from((headers.authorization ?? '').split('.')[1] ?? '', 'base64url').toString()).sub as string;
      return { ...body, key: `users/${userId}/${body.id}` };
    },
    async uploadInParts(headers, file) {
      const api = async (url: string, payload?: object) => {
        const res = await uploadApp.inject({ method: 'POST', url: `/api/files/uploads${url}`, headers, ...(payload ? { payload } : {}) });
        if (res.statusCode >= 300) throw new Error(`POST /api/files/uploads${url} answered ${res.statusCode}: ${res.body}`);
        return res.json<Record<string, unknown>>();
      };
      const { content } = file;
      const started = await api('', { name: file.name, size: content.length, contentType: file.contentType, sensitive: file.sensitive ?? false });
      const id = started.id as string;
      const partSize = started.partSize as number;
      const parts = Array.from({ length: started.partCount as number }, (_, i) => content.subarray(i * partSize, (i + 1) * partSize));
      const signed = await api(`/${id}/parts`, {
        parts: parts.map((p, i) => ({ partNumber: i + 1, checksum: createHash('sha256').update(p).digest('base64') })),
      });
      for (const p of signed.parts as { partNumber: number; url: string; headers: Record<string, string> }[]) {
        const res = await fetch(p.url, { method: 'PUT', body: parts[p.partNumber - 1], headers: p.headers });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`S3 refused part ${p.partNumber}: ${res.status}`);
      }
      const done = await api(`/${id}/complete`);
      const userId = JSON.parse(Buffer.from((headers.authorization ?? '').split('.')[1] ?? '', 'base64url').toString()).sub as string;
      return { id, key: `users/${userId}/${id}`, sha256: done.sha256 as string, size: content.length, partSize };
    },
    async close() {
      await Promise.all(apps.map((a) => a.close()));
      await Promise.all([auth.app.close(), uploadApp.close()]);
      aws.destroy();
    },
  };
}

/** HeadObject, or undefined when there is no such object. */
export async function headOrNothing(aws: AwsClients, Bucket: string, Key: string): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await aws.s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

/** Resolves once `check` holds (background work), or fails after the deadline. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const testAws = testAwsClients;
export { asEnv };
