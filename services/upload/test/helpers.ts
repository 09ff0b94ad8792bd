import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { buildTestApp as buildAuth, signedIn, type TestApp as AuthApp } from '../../auth/test/helpers';
import { buildApp } from '../src/app';
import { UploadConfig } from '../src/config';

export { signedIn };

export interface UploadTestApp {
  app: FastifyInstance;
  aws: AwsClients;
  config: UploadConfig;
  logs: Record<string, unknown>[];
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

export async function buildUploadApp(overrides: Record<string, string> = {}, opts: { aws?: AwsClients } = {}): Promise<UploadTestApp> {
  const config = loadConfig(UploadConfig, { ...process.env, UPLOADS_PER_MINUTE: '100000', ...overrides });
  const aws = opts.aws ?? createAwsClients(config);
  const logs: Record<string, unknown>[] = [];
  const lines = new EventEmitter();
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) {
        const line = JSON.parse(text) as Record<string, unknown>;
        logs.push(line);
        lines.emit('line', line);
      }
      cb();
    },
  });
  const waitForLog = (match: (line: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const seen = logs.find(match);
      if (seen) return resolve(seen);
      const listener = (line: Record<string, unknown>) => {
        if (!match(line)) return;
        lines.off('line', listener);
        resolve(line);
      };
      lines.on('line', listener);
    });
  const app = await buildApp(config, { aws, fastify: { logger: { level: 'info', stream } } });
  if (!opts.aws) app.addHook('onClose', async () => aws.destroy());
  return { app, aws, config, logs, waitForLog };
}

let auth: AuthApp | undefined;
/** A fresh signed-in user (from a real auth app on the same emulator). */
export async function newUser(): Promise<{ userId: string; token: string; headers: Record<string, string> }> {
  auth ??= await buildAuth();
  const s = await signedIn(auth.app);
  return { userId: s.userId, token: s.accessToken, headers: { authorization: `Bearer ${s.accessToken}` } };
}
export async function closeAuth(): Promise<void> {
  await auth?.app.close();
  auth = undefined;
}

export type Part = { name: string; value: string } | { name: string; filename: string; content: Buffer; type?: string };

/** A multipart/form-data body, built by hand so tests control every byte. */
export function multipart(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----scs${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    if ('value' in p) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`));
    } else {
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type ?? 'application/octet-stream'}\r\n\r\n`,
        ),
        p.content,
        Buffer.from('\r\n'),
      );
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

export const PNG_HEADER = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** `size` bytes that start like a PNG (random after the signature). */
export function pngBytes(size: number): Buffer {
  const buf = randomBytes(size);
  PNG_HEADER.copy(buf, 0, 0, Math.min(size, PNG_HEADER.length));
  return buf;
}
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function upload(app: FastifyInstance, headers: Record<string, string>, parts: Part[], url = '/api/files') {
  const body = multipart(parts);
  return app.inject({ method: 'POST', url, payload: body.payload, headers: { ...headers, ...body.headers } });
}

/** What S3 holds for a user: objects and unfinished multipart uploads. */
export async function s3Leftovers(aws: AwsClients, bucket: string, userId: string) {
  const objects = await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `users/${userId}/` }));
  const uploads = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `users/${userId}/` }));
  return { objects: objects.Contents?.length ?? 0, multipartUploads: uploads.Uploads?.length ?? 0 };
}
