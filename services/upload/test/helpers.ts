import { ListMultipartUploadsCommand, ListObjectsV2Command, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { type AwsClients, createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
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

/** What S3 holds for a user: objects and unfinished multipart uploads. */
export async function s3Leftovers(aws: AwsClients, bucket: string, userId: string) {
  const objects = await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `users/${userId}/` }));
  const uploads = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `users/${userId}/` }));
  return { objects: objects.Contents?.length ?? 0, multipartUploads: uploads.Uploads?.length ?? 0 };
}

/**
 * A zip archive of stored (uncompressed) entries, in the given order, with its central directory
 * at the end, as any zip writer makes it.
 */
export function zipBytes(entries: { name: string; data: Buffer }[], comment = ''): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    locals.push(local, nameBytes, data);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(0x800, 8);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(offset, 42);
    central.push(entry, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(Buffer.byteLength(comment), 20);
  return Buffer.concat([...locals, cd, end, Buffer.from(comment)]);
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
