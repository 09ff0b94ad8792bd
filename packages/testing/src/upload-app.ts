import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { buildTestApp as buildAuth, signedIn, type TestApp as AuthApp } from './auth-app';
import { multipart, type Part, pngBytes, zipBytes } from './files';
import { buildApp } from '@scs/upload';
import { UploadConfig } from '@scs/upload/config';

export { signedIn };
export { multipart, type Part, PNG_HEADER, pngBytes, s3Leftovers, zipBytes } from './files';

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

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function upload(app: FastifyInstance, headers: Record<string, string>, parts: Part[], url = '/api/files') {
  const body = multipart(parts);
  return app.inject({ method: 'POST', url, payload: body.payload, headers: { ...headers, ...body.headers } });
}

/** A Content-Disposition header as a browser reads it (the `content-disposition` package, an ES module). */
export async function parseDisposition(header: string): Promise<{ type: string; parameters: Record<string, string> }> {
  const { parse } = await import('content-disposition');
  return parse(header);
}

export async function presign(app: FastifyInstance, headers: Record<string, string>, body: object) {
  return app.inject({ method: 'POST', url: '/api/files/presign', headers, payload: body });
}

/** What a browser does with a presigned POST: the fields as given (or changed), then the file; the status S3 answered. */
export async function postToS3(p: { url: string; fields: Record<string, string> }, content: Buffer, changed: Record<string, string> = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries({ ...p.fields, ...changed })) form.append(k, v);
  form.append('file', new Blob([content]), 'upload.bin');
  const res = await fetch(p.url, { method: 'POST', body: form });
  await res.arrayBuffer();
  return res.status;
}

/** Versions (and delete markers) left under a user's staging prefix. */
export async function stagedCount(aws: AwsClients, bucket: string, userId: string): Promise<number> {
  const out = await aws.s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `incoming/${userId}/` }));
  return (out.Versions?.length ?? 0) + (out.DeleteMarkers?.length ?? 0);
}

/**
 * An Office Open XML package (docx, xlsx, pptx) as some editors write it: the media first,
 * `[Content_Types].xml` last, padded to about `size` bytes with an image.
 */
export function officeFile(kind: 'docx' | 'xlsx' | 'pptx', size = 2 * 1024 * 1024, opts: { macros?: boolean } = {}): Buffer {
  const folder = { docx: 'word', xlsx: 'xl', pptx: 'ppt' }[kind];
  const main = { docx: 'document.xml', xlsx: 'workbook.xml', pptx: 'presentation.xml' }[kind];
  return zipBytes([
    { name: `${folder}/media/image1.png`, data: pngBytes(size) },
    { name: `${folder}/${main}`, data: Buffer.from('<?xml version="1.0"?><document/>') },
    ...(opts.macros ? [{ name: `${folder}/vbaProject.bin`, data: randomBytes(512) }] : []),
    { name: '_rels/.rels', data: Buffer.from('<?xml version="1.0"?><Relationships/>') },
    { name: '[Content_Types].xml', data: Buffer.from('<?xml version="1.0"?><Types/>') },
  ]);
}
