import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { errorHandlerPlugin, inputPlugin } from '../src';

/** Input that passes a schema but that no store accepts is refused before any handler runs. */
describe('the input plugin', () => {
  let app: FastifyInstance;
  let handled = 0;

  beforeAll(async () => {
    app = Fastify();
    await app.register(errorHandlerPlugin);
    await app.register(inputPlugin);
    const handler = async (request: { body?: unknown; query?: unknown }) => {
      handled++;
      return { ok: true, query: request.query };
    };
    app.get('/list', { schema: { querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }) }) } }, handler);
    app.post('/names', { schema: { body: Type.Object({ name: Type.String({ maxLength: 100 }), tags: Type.Optional(Type.Array(Type.String())) }) } }, handler);
  });
  afterAll(async () => app.close());

  it.each(['Infinity', '-Infinity', '1e309'])('?limit=%s passes the schema (coercion) but is refused: 400 VALIDATION_FAILED', async (limit) => {
    const before = handled;
    const res = await app.inject({ method: 'GET', url: `/list?limit=${limit}` });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, code: 'VALIDATION_FAILED', message: 'querystring/limit must be a finite number' });
    expect(handled).toBe(before);
  });

  it.each([
    ['a lone high surrogate', '{"name":"\\ud800"}', 'body/name'],
    ['a lone low surrogate in a list', '{"name":"ok","tags":["a","\\udc00b"]}', 'body/tags/1'],
  ])('a JSON string with %s is refused: 400 VALIDATION_FAILED', async (_what, payload, where) => {
    const res = await app.inject({ method: 'POST', url: '/names', headers: { 'content-type': 'application/json' }, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION_FAILED', message: `${where} must be well-formed Unicode text` });
  });

  it('well-formed text (emoji are surrogate pairs, bidi marks are characters) and finite numbers pass', async () => {
    expect((await app.inject({ method: 'GET', url: '/list?limit=100' })).statusCode).toBe(200);
    const res = await app.inject({ method: 'POST', url: '/names', headers: { 'content-type': 'application/json' }, payload: '{"name":"\\ud83d\\ude00 caf\\u00e9 \\u202e"}' });
    expect(res.statusCode).toBe(200);
  });
});
