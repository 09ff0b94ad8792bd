import { type Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { connect } from 'node:net';

/**
 * A plain `node:http` client for tests that care about the connection: the body is written in
 * chunks as the socket accepts them (like a browser upload), the answer is read while the body is
 * still being sent, and the outcome says whether the pooled socket was reused.
 */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: <T = Record<string, unknown>>() => T;
  /** The agent handed this request a socket that an earlier request had used. */
  reusedSocket: boolean;
  /** An error while sending the body after the answer arrived (the server stopped reading). */
  sendError?: string;
  /** Whether `100 Continue` arrived before the answer. */
  continued: boolean;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string | number>;
  /** The body, sent in chunks of `chunkBytes`. With `expect: 100-continue` it waits for 100 Continue. */
  body?: Buffer;
  chunkBytes?: number;
  /**
   * What to do with the rest of the body once the answer has arrived: `finish` sending it, as a
   * browser does (the connection can then be reused), or `stop` and drop the connection, as
   * Node's fetch does. Default `finish`.
   */
  afterAnswer?: 'finish' | 'stop';
  agent?: Agent | false;
  /** Gives up (and fails) after this long: a hang, not a timing assertion. */
  deadlineMs?: number;
}

export function send(url: string, opts: SendOptions = {}): Promise<Answer> {
  const { body, chunkBytes = 64 * 1024, deadlineMs = 20_000, afterAnswer = 'finish' } = opts;
  const method = opts.method ?? (body ? 'POST' : 'GET');
  return new Promise<Answer>((resolve, reject) => {
    let sendError: string | undefined;
    let continued = false;
    let answered = false;
    let bodyDone: Promise<void> = Promise.resolve();
    const req = httpRequest(url, {
      method,
      // A body is sent with its length unless the headers say it is chunked.
      headers: { ...(body && !opts.headers?.['transfer-encoding'] ? { 'content-length': body.length } : {}), ...opts.headers },
      agent: opts.agent ?? false,
      signal: AbortSignal.timeout(deadlineMs),
    });
    const writeBody = async () => {
      if (!body) return void req.end();
      for (let offset = 0; offset < body.length && !req.destroyed; offset += chunkBytes) {
        if (answered && afterAnswer === 'stop') return;
        if (!req.write(body.subarray(offset, offset + chunkBytes))) {
          await new Promise<void>((drained) => {
            const done = () => {
              req.off('drain', done);
              req.off('close', done);
              drained();
            };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      if (!req.destroyed) await new Promise<void>((ended) => req.end(ended));
    };
    const startBody = () => {
      bodyDone = writeBody();
    };
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) sendError ??= err.code ?? err.message;
      else reject(new Error(`${method} ${url}: ${err.code ?? err.message} before any answer`));
    });
    req.on('continue', () => {
      continued = true;
      startBody();
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const settle = () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
            reusedSocket: req.reusedSocket,
            continued,
            ...(sendError ? { sendError } : {}),
          });
        if (afterAnswer === 'stop') {
          if (!req.writableEnded) req.destroy();
          settle();
        } else {
          // The rest of the body goes out (or fails) before the exchange counts as over.
          void bodyDone.then(settle, settle);
          req.once('close', settle);
        }
      });
    });
    const expectsContinue = String(opts.headers?.expect ?? '').toLowerCase() === '100-continue';
    if (expectsContinue) req.flushHeaders();
    else startBody();
  });
}

/**
 * Writes `raw` bytes on a fresh TCP connection and collects everything the server sends until it
 * closes the connection (or `deadlineMs`, then the socket is closed by the client). For requests
 * an HTTP client library would not send.
 */
export function rawExchange(url: string, raw: string | Buffer, opts: { deadlineMs?: number; endAfterWrite?: boolean } = {}): Promise<{ text: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const timer = setTimeout(() => socket.destroy(), opts.deadlineMs ?? 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      closedByServer = true;
      socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer });
    });
    socket.write(raw);
    if (opts.endAfterWrite) socket.end();
  });
}

/** The JSON body of the first HTTP answer in a raw exchange (`undefined` when it has none). */
export function firstAnswer(text: string): { status: number; headers: string; body: unknown } {
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const headerEnd = text.indexOf('\r\n\r\n');
  const headers = headerEnd >= 0 ? text.slice(0, headerEnd) : text;
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? -1);
  const rest = headerEnd >= 0 ? text.slice(headerEnd + 4) : '';
  const raw = length >= 0 ? rest.slice(0, length) : rest;
  let body: unknown;
  try {
    body = raw ? JSON.parse(raw) : undefined;
  } catch {
    body = raw;
  }
  return { status, headers, body };
}
