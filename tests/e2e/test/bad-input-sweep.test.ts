import type { FastifyServerOptions } from 'fastify';
import { randomUUID } from 'node:crypto';
import { type RawAnswer, rawExchange, type RawExchange } from '@scs/testing/http-client';
import { type Account, type InProcessStack, signUp, startInProcessStack } from '@scs/testing/in-process-stack';

/**
 * FX-01 and friends: a bad-input sweep over every route of every service, generated from the
 * OpenAPI documents the services serve (`<docs prefix>/json`) and sent through the gateway over
 * raw TCP connections (so any byte can be sent): odd content types, wrong types, unicode and
 * `__proto__` in bodies, paths and query strings, malformed and truncated bodies, huge and odd
 * headers. Whatever arrives, the answer is a 4xx in the product's error shape (or a 2xx for an
 * input that is in fact acceptable), never a 5xx, never a crash, never a wait past the request
 * timeout; an input known to break a route's schema is never accepted; and a connection the
 * answer leaves open still serves the next request.
 */
const DOCS = ['/auth/docs/json', '/api/files/docs/json', '/api/backup/docs/json'];
/** The services' request timeout in this test (FX-02), short so that stalled bodies resolve quickly. */
const REQUEST_TIMEOUT_MS = 3_000;
/** An answer later than this is a hang (generous: the machine may be loaded). */
const DEADLINE_MS = REQUEST_TIMEOUT_MS + 20_000;
const PARALLEL = 6;

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  minLength?: number;
  minimum?: number;
}
interface Operation {
  method: string;
  path: string;
  params: { in: string; name: string; required?: boolean; schema?: Schema }[];
  jsonBody?: Schema;
  secured: boolean;
}
interface Case {
  /** `METHOD /path/template`. */
  op: string;
  what: string;
  method: string;
  target: string;
  headers: [string, string | Buffer][];
  body?: Buffer;
  /** Set to leave out the default Authorization header. */
  noAuth?: boolean;
  /** The input breaks the route's schema or HTTP framing: the answer must be a refusal. */
  invalid?: boolean;
  /** Only `send` bytes of the body go out, then the client half-closes or stalls. */
  truncate?: { send: number; then: 'half-close' | 'stall' };
}
interface Outcome {
  case: Case;
  exchange: RawExchange;
  problem?: string;
}

const MULTIPART_BOUNDARY = 'sweepBoundary7MA4YWxkTrZu0gW';

function example(schema: Schema): unknown {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  if (schema.anyOf?.[0]) return example(schema.anyOf[0]);
  switch (schema.type) {
    case 'object':
      return Object.fromEntries((schema.required ?? []).map((name) => [name, example(schema.properties?.[name] ?? {})]));
    case 'integer':
    case 'number':
      return schema.minimum ?? 1;
    case 'boolean':
      return false;
    case 'array':
      return [];
    default:
      return schema.format === 'uuid' ? randomUUID() : 'x'.repeat(Math.max(schema.minLength ?? 1, 1));
  }
}

/** A value that fits a path or query parameter. */
const plausible = (name: string, schema: Schema = {}): string => (name === '*' ? 'status' : name === 'id' ? randomUUID() : String(example(schema)));

function fill(path: string, values: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_m, name: string) => values[name] ?? '');
}

function operations(doc: { paths: Record<string, Record<string, { parameters?: Operation['params']; requestBody?: { content?: Record<string, { schema?: Schema }> }; security?: unknown[] }>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      ops.push({
        method: method.toUpperCase(),
        path,
        params: op.parameters ?? [],
        ...(op.requestBody?.content?.['application/json']?.schema ? { jsonBody: op.requestBody.content['application/json'].schema } : {}),
        secured: (op.security ?? []).length > 0,
      });
    }
  }
  return ops;
}

const hasBody = (op: Operation) => !['GET', 'HEAD'].includes(op.method);

/** The request an operation expects: valid path, query and body. */
function baseline(op: Operation): { target: string; body?: Buffer; contentType?: string } {
  const pathValues = Object.fromEntries(op.params.filter((p) => p.in === 'path').map((p) => [p.name, plausible(p.name, p.schema)]));
  const query = op.params.filter((p) => p.in === 'query' && p.required).map((p) => `${p.name}=${encodeURIComponent(plausible(p.name, p.schema))}`);
  const target = fill(op.path, pathValues) + (query.length ? `?${query.join('&')}` : '');
  if (op.jsonBody) return { target, body: Buffer.from(JSON.stringify(example(op.jsonBody))), contentType: 'application/json' };
  return { target };
}

function multipartBody(parts: string[], boundary = MULTIPART_BOUNDARY, close = true): Buffer {
  return Buffer.from(parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('') + (close ? `--${boundary}--\r\n` : ''), 'utf8');
}
const filePart = (filename: string, content = 'hello, world\n') =>
  `Content-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: text/plain\r\n\r\n${content}`;
const fieldPart = (name: string, value: string) => `Content-Disposition: form-data; name="${name}"\r\n\r\n${value}`;

/** Every case of every family for one operation. */
function casesFor(op: Operation): Record<string, Case[]> {
  const name = `${op.method} ${op.path}`;
  const base = baseline(op);
  const make = (what: string, c: Partial<Case>): Case => ({
    op: name,
    what,
    method: op.method,
    target: base.target,
    headers: base.contentType ? [['Content-Type', base.contentType]] : [],
    ...(base.body ? { body: base.body } : {}),
    ...c,
  });
  const families: Record<string, Case[]> = { params: [], contentTypes: [], proto: [], bodies: [], multipart: [], headers: [], truncated: [] };

  // Path and query parameters: wrong types, unicode, encoded traversal (DL-04), limits.
  const pathValues = Object.fromEntries(op.params.filter((p) => p.in === 'path').map((p) => [p.name, plausible(p.name, p.schema)]));
  const query = base.target.includes('?') ? base.target.slice(base.target.indexOf('?') + 1) : '';
  for (const param of op.params.filter((p) => p.in === 'path')) {
    for (const value of ['abc', '00000000-0000-0000-0000-000000000000', randomUUID().toUpperCase(), '..%2F..%2Fetc%2Fpasswd', '%2e%2e', '%00', '%E2%80%AE', '%F0%9F%98%80', '%C0%AF', '%ZZ', 'a%20b', 'x;y=1', '__proto__', 'constructor', 'x'.repeat(90), 'x'.repeat(500)]) {
      const target = fill(op.path, { ...pathValues, [param.name]: value }) + (query ? `?${query}` : '');
      families.params!.push(make(`path ${param.name}=${value.slice(0, 40)}`, { target }));
    }
  }
  const path = fill(op.path, pathValues);
  for (const param of op.params.filter((p) => p.in === 'query')) {
    const others = op.params.filter((p) => p.in === 'query' && p.required && p.name !== param.name).map((p) => `${p.name}=${plausible(p.name, p.schema)}`);
    for (const value of ['abc', '-1', '0', '1e309', '99999999999999999999999', 'TRUE', '', '%00', '%E2%80%AE', '%ZZ', 'x'.repeat(5000)]) {
      families.params!.push(make(`query ${param.name}=${value.slice(0, 40)}`, { target: `${path}?${[...others, `${param.name}=${value}`].join('&')}` }));
    }
    for (const raw of [`${param.name}=1&${param.name}=2`, `${param.name}[]=1`, `${param.name}[__proto__]=1`]) {
      families.params!.push(make(`query ${raw}`, { target: `${path}?${[...others, raw].join('&')}` }));
    }
  }
  for (const raw of ['__proto__[polluted]=1', 'constructor[prototype][polluted]=1', '&&&=&=', '%', 'a=1&'.repeat(2000)]) {
    families.proto!.push(make(`query ${raw.slice(0, 40)}`, { target: `${base.target}${base.target.includes('?') ? '&' : '?'}${raw}` }));
  }

  if (hasBody(op)) {
    // FX-01: content types must never bypass validation; with a body the route cannot accept, the answer is a refusal.
    const refusedBody = op.jsonBody ? Buffer.from('[]') : undefined;
    const contentTypes: (string | Buffer)[] = [
      Buffer.from('\tapplication/json'),
      ' application/json',
      'APPLICATION/JSON',
      'Application/Json; Charset=UTF-8',
      'application/json; charset=utf-16',
      'application/json;charset="utf-8"',
      'application/json ; charset=utf-8',
      'application/jsonx',
      'application/json-patch+json',
      'application/x-www-form-urlencoded',
      'text/plain',
      'text/json',
      'multipart/form-data',
      'multipart/form-data; boundary=',
      'application/json, text/plain',
      '*/*',
      'application/octet-stream',
      'a'.repeat(8000),
      '',
    ];
    for (const type of contentTypes) {
      const label = Buffer.isBuffer(type) ? JSON.stringify(type.toString()) : JSON.stringify(type.slice(0, 40));
      families.contentTypes!.push(make(`content-type ${label} with the usual body`, { headers: [['Content-Type', type]], body: base.body ?? Buffer.from('{}') }));
      if (refusedBody) families.contentTypes!.push(make(`content-type ${label} with a body the schema refuses`, { headers: [['Content-Type', type]], body: refusedBody, invalid: true }));
    }

    // FU-13: prototype pollution in bodies.
    const json = (what: string, text: string | Buffer, invalid = false) =>
      make(what, { headers: [['Content-Type', 'application/json']], body: Buffer.isBuffer(text) ? text : Buffer.from(text), invalid });
    families.proto!.push(
      json('body {"__proto__":{"role":"admin"}}', '{"__proto__":{"role":"admin"}}', Boolean(op.jsonBody)),
      json('body {"constructor":{"prototype":{"role":"admin"}}}', '{"constructor":{"prototype":{"role":"admin"}}}', Boolean(op.jsonBody)),
    );

    // Bodies: malformed JSON, wrong shapes, wrong types, unicode, limits.
    families.bodies!.push(
      json('body {', '{', Boolean(op.jsonBody)),
      json('body []', '[]', Boolean(op.jsonBody)),
      json('body "text"', '"text"', Boolean(op.jsonBody)),
      json('body 123', '123', Boolean(op.jsonBody)),
      json('body null', 'null', Boolean(op.jsonBody)),
      json('body nested 20000 deep', `${'['.repeat(20_000)}${']'.repeat(20_000)}`, Boolean(op.jsonBody)),
      json('body with a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), base.body ?? Buffer.from('{}')])),
      json('body of invalid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
      json('body over the JSON limit (100 KB)', JSON.stringify({ pad: 'x'.repeat(100_000) }), Boolean(op.jsonBody)),
      json('empty body declared JSON', '', Boolean(op.jsonBody)),
    );
    if (op.jsonBody?.type === 'object') {
      const valid = example(op.jsonBody) as Record<string, unknown>;
      if ((op.jsonBody.required ?? []).length > 0) families.bodies!.push(json('body {}', '{}', true));
      if (op.jsonBody.additionalProperties === false) families.bodies!.push(json('body with an unknown property', JSON.stringify({ ...valid, unexpected: 1 }), true));
      for (const prop of Object.keys(op.jsonBody.properties ?? {})) {
        const values: [string, string][] = [
          ['123', '123'],
          ['-1', '-1'],
          ['1e308', '1e308'],
          ['true', 'true'],
          ['null', 'null'],
          ['[]', '[]'],
          ['{}', '{}'],
          ['""', '""'],
          ['60 000 characters', JSON.stringify('x'.repeat(60_000))],
          ['bidi and NUL', JSON.stringify('\u202Eevil\u0000.txt')],
          ['1000 emoji', JSON.stringify('\u{1F600}'.repeat(1000))],
          ['a lone surrogate', '"\\ud800"'],
          ['"__proto__"', '"__proto__"'],
        ];
        for (const [label, raw] of values) {
          const text = JSON.stringify({ ...valid, [prop]: '\u0000MARK\u0000' }).replace('"\\u0000MARK\\u0000"', raw);
          families.bodies!.push(json(`body ${prop} = ${label}`, text));
        }
        if (op.jsonBody.required?.includes(prop)) {
          const { [prop]: _left, ...without } = valid;
          families.bodies!.push(json(`body without ${prop}`, JSON.stringify(without), true));
        }
      }
    }

    // Multipart, for routes that take a form (no JSON body described).
    if (!op.jsonBody && op.method === 'POST') {
      const form = (what: string, body: Buffer, type = `multipart/form-data; boundary=${MULTIPART_BOUNDARY}`) => make(`multipart ${what}`, { headers: [['Content-Type', type]], body });
      families.multipart!.push(
        form('without a boundary parameter', multipartBody([filePart('a.txt')]), 'multipart/form-data'),
        form('with another boundary than announced', multipartBody([filePart('a.txt')], 'otherBoundary')),
        form('without its closing boundary', multipartBody([filePart('a.txt')], MULTIPART_BOUNDARY, false)),
        form('a part without Content-Disposition', multipartBody(['Content-Type: text/plain\r\n\r\nhello'])),
        form('no file, only a field', multipartBody([fieldPart('sensitive', 'true')])),
        form('an empty body', Buffer.alloc(0)),
        form('a field named __proto__', multipartBody([fieldPart('__proto__', 'x'), filePart('a.txt')])),
        form('a field named constructor', multipartBody([fieldPart('constructor', 'x'), filePart('a.txt')])),
        form('sensitive=TRUE', multipartBody([fieldPart('sensitive', 'TRUE'), filePart('a.txt')])),
        form('sensitive of 2000 characters', multipartBody([fieldPart('sensitive', 'x'.repeat(2000)), filePart('a.txt')])),
        form('50 parts', multipartBody(Array.from({ length: 50 }, (_, i) => fieldPart(`f${i}`, 'x')))),
        form('a part with 100 headers', multipartBody([`${Array.from({ length: 100 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n${filePart('a.txt')}`])),
        form('two files', multipartBody([filePart('a.txt'), filePart('b.txt')])),
        form('an empty file', multipartBody([filePart('empty.txt', '')])),
      );
      for (const filename of ['../../etc/passwd', 'a\u0000b.txt', 'invoice\u202Efdp.txt', '%00.txt', `${'x'.repeat(5000)}.txt`, 'quote\\".txt', 'a;b=c.txt', '__proto__', '', '\u6f22'.repeat(250) + '.txt', 'CON.txt', '.txt', 'a.txt.', 'a.php;.txt']) {
        families.multipart!.push(form(`filename ${JSON.stringify(filename.slice(0, 30))}`, multipartBody([filePart(filename)])));
      }
      families.multipart!.push(
        form('filename with CR LF', multipartBody([`Content-Disposition: form-data; name="file"; filename="a\r\nX-Injected: 1.txt"\r\n\r\nhello`])),
        form("filename*=UTF-8''", multipartBody([`Content-Disposition: form-data; name="file"; filename*=UTF-8''%E2%82%AC%20rates.txt\r\nContent-Type: text/plain\r\n\r\nhello`])),
      );
    }

    // FX-02: truncated bodies, the client giving up or stalling; answered within the request timeout.
    const body = Buffer.concat([base.body ?? multipartBody([filePart('a.txt', 'x'.repeat(2000))]), Buffer.alloc(2000, 0x20)]);
    const type = base.contentType ?? `multipart/form-data; boundary=${MULTIPART_BOUNDARY}`;
    for (const then of ['half-close', 'stall'] as const) {
      families.truncated!.push(make(`Content-Length ${body.length}, 100 bytes sent, then ${then}`, { headers: [['Content-Type', type]], body, truncate: { send: 100, then }, invalid: true }));
    }
    families.truncated!.push(
      make('chunked, one chunk, then stall', {
        headers: [
          ['Content-Type', type],
          ['Transfer-Encoding', 'chunked'],
        ],
        body: Buffer.from(`64\r\n${body.subarray(0, 100).toString('latin1')}\r\n`, 'latin1'),
        truncate: { send: Number.MAX_SAFE_INTEGER, then: 'stall' },
        invalid: true,
      }),
    );
  }

  // Headers: huge, many, odd Authorization, cookies, Host, Accept and forwarding headers.
  const header = (what: string, headers: [string, string | Buffer][], extra: Partial<Case> = {}) =>
    make(`header ${what}`, { headers: [...(base.contentType ? ([['Content-Type', base.contentType]] as [string, string][]) : []), ...headers], ...extra });
  families.headers!.push(
    header('X-Big of 12 KB', [['X-Big', 'a'.repeat(12_000)]]),
    header('X-Big of 20 KB (431)', [['X-Big', 'a'.repeat(20_000)]], { invalid: true }),
    header('150 headers', Array.from({ length: 150 }, (_, i): [string, string] => [`X-H${i}`, 'v'])),
    header('UTF-8 bytes in a value', [['X-Name', Buffer.from('\u00e9\u6f22\u5b57', 'utf8')]]),
    header('a folded value', [['X-Fold', 'a\r\n b']], { invalid: true }),
    header('an invalid name', [['X Bad', '1']], { invalid: true }),
    header('Authorization: Bearer (empty)', [['Authorization', 'Bearer']], { noAuth: true }),
    header('Authorization: Basic', [['Authorization', 'Basic dXNlcjpwYXNz']], { noAuth: true }),
    header('Authorization: Bearer of 8000 characters', [['Authorization', `Bearer ${'a'.repeat(8000)}`]], { noAuth: true }),
    header('Authorization: alg none', [['Authorization', 'Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIn0.']], { noAuth: true }),
    header('Authorization: Bearer a.b.c', [['Authorization', 'Bearer a.b.c']], { noAuth: true }),
    header('Cookie of 4 KB', [['Cookie', `scs_refresh=${'a'.repeat(4000)}`]]),
    header('Cookie with bad encoding', [['Cookie', 'scs_refresh=%ZZ; a=b; a=c; q="quoted']]),
    header('200 cookies', [['Cookie', Array.from({ length: 200 }, (_, i) => `c${i}=v`).join('; ')]]),
    header('Origin: null, Sec-Fetch-Site: cross-site', [
      ['Origin', 'null'],
      ['Sec-Fetch-Site', 'cross-site'],
    ]),
    header('Accept: application/xml', [['Accept', 'application/xml']]),
    header('Accept with a bad q', [['Accept', '*/*;q=foo, text/html;q=2']]),
    header('Range and If-None-Match', [
      ['Range', 'bytes=0-1'],
      ['If-None-Match', '*'],
    ]),
    header('forged X-Forwarded-*', [
      ['X-Forwarded-For', 'not-an-ip, 999.1.1.1'],
      ['X-Forwarded-Proto', 'gopher'],
      ['X-Forwarded-Host', 'evil.example'],
    ]),
    header('hop-by-hop: Upgrade, Keep-Alive, TE', [
      ['Upgrade', 'websocket'],
      ['Keep-Alive', 'timeout=5'],
      ['TE', 'trailers'],
    ]),
    header('Expect: teapot', [['Expect', 'teapot']], { invalid: true }),
    header('Transfer-Encoding: gzip', [['Transfer-Encoding', 'gzip']], { invalid: true }),
    header('Content-Length: -1', [['Content-Length', '-1']], { invalid: true }),
  );
  return families;
}

function rawRequest(c: Case, token: string): (string | Buffer)[] {
  const headers: [string, string | Buffer][] = [['Host', 'sweep.test'], ...(c.noAuth ? [] : ([['Authorization', `Bearer ${token}`]] as [string, string][])), ...c.headers];
  const framing = headers.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n));
  if (c.body && !framing) headers.push(['Content-Length', String(c.body.length)]);
  const head = Buffer.concat([
    Buffer.from(`${c.method} ${c.target} HTTP/1.1\r\n`, 'latin1'),
    ...headers.map(([n, v]) => Buffer.concat([Buffer.from(`${n}: `, 'latin1'), Buffer.isBuffer(v) ? v : Buffer.from(v, 'latin1'), Buffer.from('\r\n')])),
    Buffer.from('\r\n'),
  ]);
  const body = c.body && c.truncate ? c.body.subarray(0, c.truncate.send) : c.body;
  return body ? [head, body] : [head];
}

const isErrorShape = (body: unknown, status: number) =>
  typeof body === 'object' &&
  body !== null &&
  (body as { statusCode?: unknown }).statusCode === status &&
  typeof (body as { code?: unknown }).code === 'string' &&
  typeof (body as { error?: unknown }).error === 'string' &&
  typeof (body as { message?: unknown }).message === 'string';

function judge(c: Case, exchange: RawExchange): string | undefined {
  const answer: RawAnswer | undefined = exchange.answer;
  if (!answer) {
    // A truncated body may end with the server closing the connection instead of answering.
    if (c.truncate && exchange.closedByServer) return undefined;
    return exchange.closedByServer ? 'the connection was closed without an answer' : `no answer within ${DEADLINE_MS} ms (a hang)`;
  }
  // 501 NOT_IMPLEMENTED is the deliberate answer of a route a service has not shipped yet (HEAD shows no body).
  const notShipped = answer.status === 501 && (c.method === 'HEAD' || /NOT_IMPLEMENTED/.test(answer.body.toString()));
  if (answer.status >= 500 && !notShipped) return `answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`;
  if (c.invalid && answer.status < 400) return `accepted an input it must refuse (${answer.status}): ${answer.body.toString().slice(0, 300)}`;
  if (answer.status >= 400 && c.method !== 'HEAD' && /json/.test(answer.headers['content-type'] ?? '')) {
    let body: unknown;
    try {
      body = answer.json();
    } catch {
      return `a ${answer.status} with a JSON content type whose body is not JSON`;
    }
    if (!isErrorShape(body, answer.status)) return `a ${answer.status} not in the product's error shape: ${answer.body.toString().slice(0, 300)}`;
  }
  if (exchange.followUp && exchange.followUp.status !== 200) return `the connection left open did not serve the next request (${exchange.followUp.status})`;
  return undefined;
}

/** Runs `tasks` with at most `limit` at once. */
async function pool<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i] as T);
      }
    }),
  );
  return results;
}

const describeCase = (o: Outcome) => {
  const head = `${o.case.method} ${o.case.target.slice(0, 120)}`;
  const headers = o.case.headers.map(([n, v]) => `${n}: ${(Buffer.isBuffer(v) ? v.toString() : v).slice(0, 60)}`).join(' | ');
  const body = o.case.body ? ` body(${o.case.body.length} B): ${o.case.body.subarray(0, 120).toString()}` : '';
  return `${o.case.op} [${o.case.what}] ${head}${headers ? ` {${headers}}` : ''}${body} -> ${o.problem}`;
};

describe('FX-01: bad-input sweep over every route, from the services\' OpenAPI documents, through the gateway', () => {
  let stack: InProcessStack;
  let admin: Account;
  let ops: Operation[];
  let families: Record<string, Case[]>;

  beforeAll(async () => {
    const fastify = {
      requestTimeout: REQUEST_TIMEOUT_MS,
      // How often Node checks request timeouts (30 s by default); Host stays checked by the common plugin.
      http: { requireHostHeader: false, connectionsCheckingInterval: 250 },
    } as Partial<FastifyServerOptions>;
    stack = await startInProcessStack({ UPLOADS_PER_MINUTE: '100000' }, fastify);
    admin = await signUp(stack, { admin: true });
    ops = [];
    for (const doc of DOCS) {
      const res = await fetch(`${stack.url}${doc}`);
      expect(res.status).toBe(200);
      ops.push(...operations((await res.json()) as Parameters<typeof operations>[0]));
    }
    families = {};
    for (const op of ops) {
      for (const [family, cases] of Object.entries(casesFor(op))) (families[family] ??= []).push(...cases);
    }
  }, 60_000);

  afterAll(async () => stack?.close());

  const sweep = async (family: string) => {
    const cases = families[family] ?? [];
    expect(cases.length).toBeGreaterThan(0);
    const outcomes = await pool(cases, PARALLEL, async (c): Promise<Outcome> => {
      const exchange = await rawExchange(stack.url, rawRequest(c, admin.accessToken), {
        deadlineMs: DEADLINE_MS,
        followUp: !c.truncate,
        halfClose: c.truncate?.then === 'half-close',
        head: c.method === 'HEAD',
      });
      const problem = judge(c, exchange);
      return { case: c, exchange, ...(problem ? { problem } : {}) };
    });
    const problems = outcomes.filter((o) => o.problem).map(describeCase);
    expect(problems).toEqual([]);
  };

  it('covers every route of the three services', () => {
    const names = ops.map((op) => `${op.method} ${op.path}`);
    for (const expected of ['POST /auth/login', 'POST /auth/register', 'GET /auth/me', 'POST /api/files/', 'GET /api/files/{id}', 'POST /api/files/presign']) {
      expect(names).toContain(expected);
    }
    expect(names.some((n) => n.includes('/api/backup/'))).toBe(true);
  });

  it('FX-01: odd Content-Types (\\tapplication/json, leading space, odd casing, charsets, lists, multipart without boundary) never bypass validation, never a 5xx', async () => {
    await sweep('contentTypes');
  }, 180_000);

  it('FU-13: __proto__ and constructor.prototype in bodies and query strings are refused or ignored, never a 5xx', async () => {
    await sweep('proto');
  }, 180_000);

  it('DL-04: path and query parameters of the wrong type, unicode, encoded traversal, over-long: a 4xx, never a 5xx', async () => {
    await sweep('params');
  }, 180_000);

  it('malformed JSON, wrong shapes and wrong types, unicode and oversized values in every body property: a 4xx, never a 5xx', async () => {
    await sweep('bodies');
  }, 180_000);

  it('FU-02, FU-04, FU-07: malformed forms and odd file names are refused or stored safely, never a 5xx', async () => {
    await sweep('multipart');
  }, 180_000);

  it('huge and odd headers (431 at 20 KB, 150 headers, odd Authorization, cookies, forwarding and hop-by-hop headers): never a 5xx', async () => {
    await sweep('headers');
  }, 180_000);

  it('FX-02: a truncated body (the client gives up or stalls) is answered or closed within the request timeout, never a hang', async () => {
    await sweep('truncated');
  }, 180_000);

  it('afterwards every server still answers, sign-in and uploads work through the gateway, and no 500 was logged', async () => {
    for (const url of [stack.url, ...Object.values(stack.services)]) expect((await fetch(`${url}/health`)).status).toBe(200);
    const user = await signUp(stack);
    const form = new FormData();
    form.append('file', new Blob(['still working\n']), 'after-sweep.txt');
    const upload = await fetch(`${stack.url}/api/files`, { method: 'POST', headers: user.headers, body: form });
    expect(upload.status).toBe(201);
    const list = await fetch(`${stack.url}/api/files`, { headers: user.headers });
    expect(list.status).toBe(200);
    expect(list.headers.get('cache-control')).toBe('no-store');
    const errors = stack.problems.filter((line) => Number(line.level) >= 50).map((line) => `${String(line.msg)} ${JSON.stringify(line.err ?? '').slice(0, 300)}`);
    expect(errors).toEqual([]);
  });
});
