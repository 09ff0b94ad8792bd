// Baseline "floor": the least any upload service must do. A request body comes in on a socket, one
// SHA-256 pass runs over it, and it goes out as one streamed PUT to S3 (signed headers, unsigned
// payload, no part buffers, no parsing, no checks, no database). Nothing a real service needs is
// here: it measures the physical cost of moving the bytes through a Node process.
//
// POST /upload with the raw file as the body (Content-Length required) -> 201 {"size", "sha256", "key"}.
// Settings (environment): PORT, HOST (127.0.0.1), BUCKET, KEY_PREFIX (bench-floor/), and the AWS
// SDK's standard settings (AWS_ENDPOINT_URL, AWS_REGION, credentials).
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash, randomUUID } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';

const { PORT = '0', HOST = '127.0.0.1', BUCKET, KEY_PREFIX = 'bench-floor/' } = process.env;
if (!BUCKET) throw new Error('BUCKET is required');
const s3 = new S3Client({ forcePathStyle: true });
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

const answer = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const server = createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/health') return answer(res, 200, { ok: true });
  const length = Number(req.headers['content-length']);
  if (req.method !== 'POST' || !Number.isSafeInteger(length)) return answer(res, 400, { error: 'POST /upload with a Content-Length' });
  const key = `${KEY_PREFIX}${randomUUID()}`;
  // A presigned URL signs the headers only (UNSIGNED-PAYLOAD): the body is never hashed for S3.
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 300 });
  const hash = createHash('sha256');
  const put = request(url, { method: 'PUT', agent, headers: { 'content-length': length } });
  put.on('response', (s3res) => {
    s3res.resume();
    s3res.on('end', () => {
      if (s3res.statusCode !== 200) return answer(res, 502, { error: `S3 answered ${s3res.statusCode}` });
      answer(res, 201, { key, size: length, sha256: hash.digest('hex') });
    });
  });
  put.on('error', (err) => answer(res, 502, { error: err.message }));
  req.on('data', (chunk) => {
    hash.update(chunk);
    if (!put.write(chunk)) {
      req.pause();
      put.once('drain', () => req.resume());
    }
  });
  req.on('end', () => put.end());
  req.on('close', () => {
    if (!req.complete) put.destroy();
  });
});
server.listen(Number(PORT), HOST);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
