import { ConfigError, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { UploadConfig } from '../src/config';
import { buildUploadApp, multipart, newUser, type UploadTestApp } from './helpers';

/**
 * The per-user upload rate limit (UPLOADS_PER_MINUTE) is counted in DynamoDB, so it holds across
 * every upload instance: two instances on one emulator, parallel uploads over real connections.
 */
let a: UploadTestApp;
let b: UploadTestApp;
const urls: string[] = [];
const listen = async (app: FastifyInstance) => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  [a, b] = await Promise.all([buildUploadApp({ UPLOADS_PER_MINUTE: '3' }), buildUploadApp({ UPLOADS_PER_MINUTE: '3' })]);
  urls.push(await listen(a.app), await listen(b.app));
});
afterAll(async () => Promise.all([a.app.close(), b.app.close()]));

const uploadTo = async (url: string, headers: Record<string, string>, name: string) => {
  const form = multipart([{ name: 'file', filename: name, content: Buffer.from(`contents of ${name}\n`) }]);
  const res = await fetch(`${url}/api/files`, { method: 'POST', headers: { ...headers, ...form.headers }, body: form.payload });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
};

describe('UPLOADS_PER_MINUTE across instances', () => {
  it('10 parallel uploads of one user spread over two instances: exactly 3 are stored, 7 get 429 RATE_LIMITED with Retry-After; another user is unaffected', async () => {
    const user = await newUser();
    const other = await newUser();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => uploadTo(urls[i % 2]!, user.headers, `r${i}.txt`)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    const refused = results.filter((r) => r.status === 429);
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.body).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // Either instance refuses the next one too; another user uploads on both.
    expect((await uploadTo(urls[0]!, user.headers, 'again.txt')).status).toBe(429);
    expect((await uploadTo(urls[1]!, user.headers, 'again.txt')).status).toBe(429);
    expect((await uploadTo(urls[0]!, other.headers, 'o1.txt')).status).toBe(201);
    expect((await uploadTo(urls[1]!, other.headers, 'o2.txt')).status).toBe(201);
  });
});

describe('upload configuration of the shared limits', () => {
  it.each([
    ['THROTTLE_TABLE', 'x'],
    ['UPLOADS_PER_MINUTE', '0'],
  ])('refuses a bad %s (%s) and names the variable', (variable, value) => {
    expect(() => loadConfig(UploadConfig, { [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig(UploadConfig, { [variable]: value })).toThrow(new RegExp(`^Invalid configuration: ${variable} `));
  });
});
