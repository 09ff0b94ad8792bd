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

/** One HTTP answer read off a raw connection. */
export interface RawAnswer {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  json: () => unknown;
}

/**
 * Parses the first final answer (1xx skipped) at the start of `buf`. Returns it and where it ends,
 * or `undefined` while it is incomplete; `closed` says the server has closed the connection (a
 * body without length then ends there).
 */
export function parseAnswer(buf: Buffer, opts: { head?: boolean; closed?: boolean } = {}): { answer: RawAnswer; end: number } | undefined {
  let offset = 0;
  for (;;) {
    const sep = buf.indexOf('\r\n\r\n', offset);
    if (sep < 0) return undefined;
    const [statusLine = '', ...lines] = buf.subarray(offset, sep).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    offset = sep + 4;
    if (status >= 100 && status < 200) continue;
    let body: Buffer = Buffer.alloc(0);
    let end = offset;
    if (opts.head || status === 204 || status === 304) {
      // no body
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', end);
        if (lineEnd < 0) return undefined;
        const size = parseInt(buf.subarray(end, lineEnd).toString('latin1'), 16);
        if (size === 0) {
          const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd < 0) return undefined;
          end = trailerEnd + 4;
          break;
        }
        if (buf.length < lineEnd + 2 + size + 2) return undefined;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        end = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (buf.length < offset + length) return undefined;
      body = buf.subarray(offset, offset + length);
      end = offset + length;
    } else {
      if (!opts.closed) return undefined;
      body = buf.subarray(offset);
      end = buf.length;
    }
    const text = body.toString('utf8');
    return { answer: { status, headers, body, json: () => JSON.parse(text) as unknown }, end };
  }
}

export interface RawExchange {
  /** The answer to `raw`, or `undefined` when none arrived before the deadline or the close. */
  answer?: RawAnswer;
  /** The answer to a follow-up `GET /health` on the same connection, when one was sent. */
  followUp?: RawAnswer;
  /** The server closed the connection (FIN or reset). */
  closedByServer: boolean;
  /** Everything received, for messages. */
  received: string;
}

/**
 * Writes `raw` bytes on a fresh TCP connection (split into `chunks` to control what arrives when)
 * and reads the answer. With `followUp`, when the answer leaves the connection open, a
 * `GET /health` is sent on the same connection: its answer shows the connection was left usable.
 * `halfClose` ends the client's side after writing (a client that gave up); otherwise the
 * connection stays open, as a stalled client's would. Closes the connection at `deadlineMs`.
 */
export function rawExchange(
  url: string,
  raw: string | Buffer | (string | Buffer)[],
  opts: { deadlineMs?: number; halfClose?: boolean; followUp?: boolean; head?: boolean } = {},
): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true });
    let buf = Buffer.alloc(0);
    let closedByServer = false;
    let answer: RawAnswer | undefined;
    let followUp: RawAnswer | undefined;
    let followUpFrom = -1;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...(answer ? { answer } : {}), ...(followUp ? { followUp } : {}), closedByServer, received: buf.toString('latin1').slice(0, 2000) });
    };
    const timer = setTimeout(finish, opts.deadlineMs ?? 10_000);
    const check = () => {
      if (!answer) {
        const parsed = parseAnswer(buf, { head: opts.head ?? false, closed: closedByServer });
        if (!parsed) return closedByServer ? finish() : undefined;
        answer = parsed.answer;
        const closing = /close/i.test(answer.headers.connection ?? '');
        if (!opts.followUp || closing || closedByServer) return finish();
        followUpFrom = parsed.end;
        socket.write('GET /health HTTP/1.1\r\nHost: sweep\r\nConnection: close\r\n\r\n');
        return;
      }
      const parsed = parseAnswer(buf.subarray(followUpFrom), { closed: closedByServer });
      if (parsed) followUp = parsed.answer;
      if (parsed || closedByServer) finish();
    };
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      check();
    });
    socket.on('end', () => {
      closedByServer = true;
      check();
    });
    socket.on('error', () => {
      closedByServer = true;
      check();
    });
    for (const piece of Array.isArray(raw) ? raw : [raw]) socket.write(piece);
    if (opts.halfClose) socket.end();
  });
}
