import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createAwsClients, loadConfig } from '@scs/common';
import { UsageRepository } from '@scs/common/files';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { multipart } from '@scs/testing/files';
import { UploadConfig } from '@scs/upload/config';
import { parseAnswer, type RawAnswer, send } from '@scs/testing/http-client';
import { type Account, type InProcessStack, signUp, startInProcessStack } from '@scs/testing/in-process-stack';

/**
 * Abuse by a signed-in user, through the real gateway over real sockets: a body that trickles in
 * (an upload below the minimum rate, a JSON body past its deadline) is answered 408 and leaves
 * nothing behind; parallel uploads and presigns at the file-count limit store exactly the number
 * allowed. Small knob values keep each case short; every wait is for an answer, never a threshold.
 */
const MIN_RATE = 2000;
const QUOTA_FILES = 3;
/** A trickling client gets its answer within a few seconds; anything near this is a hang. */
const DEADLINE_MS = 20_000;

const settings = {
  MIN_UPLOAD_BYTES_PER_SECOND: String(MIN_RATE),
  UPLOAD_RATE_WINDOW_SECONDS: '1',
  UPLOAD_RATE_GRACE_SECONDS: '1',
  BODY_TIMEOUT_SECONDS: '2',
  QUOTA_FILES: String(QUOTA_FILES),
  UPLOADS_PER_MINUTE: '100000',
};
const config = loadConfig(UploadConfig, { ...process.env, ...settings });
const aws = createAwsClients(config);
const usage = new UsageRepository(aws.dynamo, config.FILES_TABLE, console);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack(settings);
}, 60_000);
afterAll(async () => {
  await stack?.close();
  aws.destroy();
});

/**
 * Sends `head` (request line, headers and the first body bytes) on a fresh connection to the
 * gateway, then one more body byte every `everyMs` until an answer arrives; resolves with it and
 * what was sent. The connection is closed after the answer.
 */
function trickle(head: Buffer, rest: Buffer, everyMs: number): Promise<{ answer: RawAnswer; sentBodyBytes: number; ms: number }> {
  const { hostname, port } = new URL(stack.url);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let buf = Buffer.alloc(0);
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < rest.length && socket.writable) socket.write(rest.subarray(sent, (sent += 1)));
    }, everyMs);
    const deadline = setTimeout(() => finish(new Error(`no answer within ${DEADLINE_MS} ms: ${buf.toString('latin1')}`)), DEADLINE_MS);
    const finish = (err?: Error, answer?: RawAnswer) => {
      clearInterval(drip);
      clearTimeout(deadline);
      socket.destroy();
      if (answer) resolve({ answer, sentBodyBytes: sent, ms: Date.now() - started });
      else reject(err ?? new Error(`the connection closed without an answer: ${buf.toString('latin1')}`));
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const parsed = parseAnswer(buf);
      if (parsed) finish(undefined, parsed.answer);
    });
    socket.on('close', () => finish());
    socket.on('error', () => undefined);
    socket.write(head);
  });
}

/** A POST whose body goes out `chunkBytes` at a time, one chunk every `everyMs` (a client on a slow link). */
function paced(url: string, headers: Record<string, string>, body: Buffer, chunkBytes: number, everyMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'content-length': body.length }, agent: false, signal: AbortSignal.timeout(DEADLINE_MS) });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    let offset = 0;
    const next = () => {
      if (offset >= body.length) return void req.end();
      req.write(body.subarray(offset, (offset += chunkBytes)));
      setTimeout(next, everyMs);
    };
    next();
  });
}

function request(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries({ host: 'localhost', ...headers }).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

async function leftovers(who: Account) {
  const prefix = `users/${who.userId}/`;
  const objects = await aws.s3.send(new ListObjectsV2Command({ Bucket: config.PRIMARY_BUCKET, Prefix: prefix }));
  const uploads = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: config.PRIMARY_BUCKET, Prefix: prefix }));
  const listed = await send(`${stack.url}/api/files`, { headers: who.headers });
  return {
    objects: objects.Contents?.length ?? 0,
    multipartUploads: uploads.Uploads?.length ?? 0,
    listed: listed.json<{ items: unknown[] }>().items.length,
    usage: await usage.usage(who.userId),
    counts: await usage.fileCounts(who.userId),
  };
}
const NOTHING = {
  objects: 0,
  multipartUploads: 0,
  listed: 0,
  usage: { usedBytes: 0, reservedBytes: 0 },
  counts: { usedFiles: 0, reservedFiles: 0, committedFiles: 0 },
};

describe('bodies that trickle, through the gateway', () => {
  it('FX-02: an upload sending a byte every 100 ms is answered 408 REQUEST_TOO_SLOW: no object, no open multipart upload, no record, nothing reserved', async () => {
    const who = await signUp(stack);
    const form = multipart([{ name: 'file', filename: 'slow.txt', content: Buffer.from('x'.repeat(50_000)) }]);
    const first = 300;
    const head = Buffer.concat([
      Buffer.from(request('POST', '/api/files', { ...who.headers, ...form.headers, 'content-length': form.payload.length })),
      form.payload.subarray(0, first),
    ]);
    const { answer, sentBodyBytes } = await trickle(head, form.payload.subarray(first), 100);
    expect(answer.status).toBe(408);
    expect(answer.json()).toMatchObject({ statusCode: 408, code: 'REQUEST_TOO_SLOW', error: 'Request Timeout', message: expect.stringContaining(`${MIN_RATE} bytes per second`) });
    expect(sentBodyBytes).toBeLessThan(form.payload.length - first);
    expect(await leftovers(who)).toEqual(NOTHING);
  });

  it('FX-02: a trickle while the form is still before its file part is stopped the same way', async () => {
    const who = await signUp(stack);
    const form = multipart([
      { name: 'sensitive', value: 'false' },
      { name: 'file', filename: 'slow.txt', content: Buffer.from('y'.repeat(10_000)) },
    ]);
    const head = Buffer.from(request('POST', '/api/files', { ...who.headers, ...form.headers, 'content-length': form.payload.length }));
    const { answer } = await trickle(head, form.payload, 100);
    expect(answer.status).toBe(408);
    expect(answer.json()).toMatchObject({ code: 'REQUEST_TOO_SLOW' });
    expect(await leftovers(who)).toEqual(NOTHING);
  });

  it('FX-02: a presign whose JSON body trickles is answered 408 REQUEST_TIMEOUT after BODY_TIMEOUT_SECONDS, and holds nothing', async () => {
    const who = await signUp(stack);
    const body = Buffer.from(JSON.stringify({ name: 'a.txt', size: 5, contentType: 'text/plain', sensitive: false }));
    const head = Buffer.concat([
      Buffer.from(request('POST', '/api/files/presign', { ...who.headers, 'content-type': 'application/json', 'content-length': body.length })),
      body.subarray(0, 5),
    ]);
    const { answer } = await trickle(head, body.subarray(5), 200);
    expect(answer.status).toBe(408);
    expect(answer.json()).toMatchObject({ statusCode: 408, code: 'REQUEST_TIMEOUT' });
    expect(await leftovers(who)).toEqual(NOTHING);
  });

  it('FX-02: an upload well above the minimum rate is stored, however long it takes', async () => {
    const who = await signUp(stack);
    const content = Buffer.from('z'.repeat(600_000));
    const form = multipart([{ name: 'file', filename: 'steady.txt', content }]);
    // 20 KiB every 100 ms (about 200 KB/s, a hundred times the minimum) for about 3 s.
    const res = await paced(`${stack.url}/api/files`, { ...who.headers, ...form.headers }, form.payload, 20 * 1024, 100);
    expect(res.status).toBe(201);
    expect(JSON.parse(res.text)).toMatchObject({ name: 'steady.txt', size: content.length });
  });
});

describe('FU-03: parallel requests at the file-count limit, through the gateway', () => {
  it('FU-03: 8 parallel uploads with room for 3 files: exactly 3 are stored, 5 are 413 FILE_COUNT_EXCEEDED', async () => {
    const who = await signUp(stack);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => {
        const form = multipart([{ name: 'file', filename: `race${i}.txt`, content: Buffer.from(`file ${i}`) }]);
        return send(`${stack.url}/api/files`, { body: form.payload, headers: { ...who.headers, ...form.headers }, deadlineMs: DEADLINE_MS });
      }),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 201, 201, 413, 413, 413, 413, 413]);
    for (const a of answers.filter((x) => x.status === 413)) expect(a.json()).toMatchObject({ code: 'FILE_COUNT_EXCEEDED' });
    const after = await leftovers(who);
    expect(after).toMatchObject({ objects: 3, multipartUploads: 0, listed: 3, counts: { usedFiles: 3, reservedFiles: 0, committedFiles: 3 } });
  });

  it('FU-03: 8 parallel zero-byte presigns with room for 3: exactly 3 sessions, 5 are 413 FILE_COUNT_EXCEEDED', async () => {
    const who = await signUp(stack);
    const body = Buffer.from(JSON.stringify({ name: 'empty.txt', size: 0, contentType: 'text/plain', sensitive: false }));
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        send(`${stack.url}/api/files/presign`, { body, headers: { ...who.headers, 'content-type': 'application/json' }, deadlineMs: DEADLINE_MS }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 201, 413, 413, 413, 413, 413]);
    expect(await usage.fileCounts(who.userId)).toEqual({ usedFiles: 0, reservedFiles: 3, committedFiles: 3 });
  });
});
