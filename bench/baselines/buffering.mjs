// Baseline "buffering": the upload handler many examples show. Fastify with @fastify/multipart reads
// the whole file into memory (`toBuffer()`), then the AWS SDK sends it with one PutObject (with the
// SDK's default integrity: a signed payload hash and a CRC32 checksum). Memory grows with the file.
//
// POST /upload, multipart/form-data with a "file" part -> 201 {"size", "key"}.
// Settings (environment): PORT, HOST (127.0.0.1), BUCKET, KEY_PREFIX (bench-buffering/), MAX_BYTES
// (2 GiB), and the AWS SDK's standard settings (AWS_ENDPOINT_URL, AWS_REGION, credentials).
import multipart from '@fastify/multipart';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';

const { PORT = '0', HOST = '127.0.0.1', BUCKET, KEY_PREFIX = 'bench-buffering/', MAX_BYTES = String(2 * 1024 ** 3) } = process.env;
if (!BUCKET) throw new Error('BUCKET is required');
const s3 = new S3Client({ forcePathStyle: true });
const app = Fastify({ bodyLimit: Number(MAX_BYTES) });
await app.register(multipart, { limits: { fileSize: Number(MAX_BYTES) } });

app.get('/health', async () => ({ ok: true }));
app.post('/upload', async (request, reply) => {
  const file = await request.file();
  if (!file) return reply.code(400).send({ error: 'no file' });
  const body = await file.toBuffer();
  const key = `${KEY_PREFIX}${randomUUID()}`;
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentType: file.mimetype }));
  return reply.code(201).send({ key, size: body.length });
});

await app.listen({ port: Number(PORT), host: HOST });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.close().then(() => process.exit(0)));
