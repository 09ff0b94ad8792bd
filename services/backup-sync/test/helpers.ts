import { HeadObjectCommand, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { type AwsClients, loadConfig } from '@scs/common';
import { FileRepository, UsageRepository } from '@scs/common/files';
import type { FastifyInstance } from 'fastify';
import { buildTestApp as buildAuth, type TestApp as AuthApp, signedIn, uniqueName } from '../../auth/test/helpers';
import { asEnv, isolatedResources, testAwsClients } from '@scs/testing/isolated';
import type { ResourceNames } from '@scs/local-stack/provision';
import { buildApp as buildUpload } from '../../upload/src/app';
import { UploadConfig } from '../../upload/src/config';
import { upload as uploadParts } from '../../upload/test/helpers';
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
