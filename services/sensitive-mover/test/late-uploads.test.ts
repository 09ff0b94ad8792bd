import { loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { EventEmitter, once } from 'node:events';
import { asEnv } from '@scs/testing/isolated';
import { buildApp } from '@scs/upload';
import { UploadConfig } from '@scs/upload/config';
import { closeAuth, newUser, postToS3, presign, stagedCount } from '@scs/testing/upload-app';
import { createHandler, type MoveReport } from '../src/handler';
import { LocalLambdaRunner } from '../src/local-runner';
import { type MoverWorld, moverWorld, silent } from './helpers';

/**
 * A direct upload's presigned form can be posted again until it expires. Bytes that arrive after
 * `/complete` are removed as soon as their object-created event is handled (the primary bucket
 * notifies the mover of staging keys too), never counted, never left in the primary bucket.
 */
let world: MoverWorld;
let app: FastifyInstance;
let runner: LocalLambdaRunner;
const results = new EventEmitter();
beforeAll(async () => {
  world = await moverWorld('lateuploads');
  app = await buildApp(loadConfig(UploadConfig, { ...process.env, ...asEnv(world.names), LOG_LEVEL: 'silent', UPLOADS_PER_MINUTE: '100000' }), { aws: world.aws });
  const move = createHandler(world.mover(), silent);
  runner = new LocalLambdaRunner({
    sqs: world.aws.sqs,
    queueUrl: world.queueUrl,
    deadLetterQueueUrl: world.dlqUrl,
    handler: async (event, context) => {
      const report: MoveReport = await move(event, context);
      for (const r of report.results) results.emit(r.key, r.outcome);
      return report;
    },
    functionName: 'sensitive-mover',
    maxAttempts: 3,
    retryDelaySeconds: 0,
    concurrency: 2,
    timeoutSeconds: 30,
    pollSeconds: 1,
    log: silent,
  });
  runner.start();
});
afterAll(async () => {
  await runner.stop();
  await app.close();
  await closeAuth();
  world.close();
});

/** Resolves with the outcome of the next event handled for `key`. */
const nextOutcome = (key: string) => once(results, key).then(([outcome]) => outcome as string);

describe('a presigned form posted again after /complete', () => {
  it.each([true, false])('sensitive=%s: the late bytes are removed on their event, never counted, the file unchanged', async (sensitive) => {
    const user = await newUser();
    const content = Buffer.from('the verified bytes of this file');
    const form = await presign(app, user.headers, { name: 'late.txt', size: content.length, contentType: 'text/plain', sensitive });
    expect(form.statusCode).toBe(201);
    const issued = form.json<{ id: string; url: string; fields: Record<string, string> }>();
    const stagingKey = `incoming/${user.userId}/${issued.id}`;

    // The first post: its upload waits for it (pending), so the mover leaves it to /complete.
    const first = nextOutcome(stagingKey);
    expect(await postToS3(issued, content)).toBe(204);
    expect(await first).toBe('staged');
    const done = await app.inject({ method: 'POST', url: `/api/files/${issued.id}/complete`, headers: user.headers });
    expect(done.statusCode).toBe(201);
    const usage = async () => (await app.inject({ method: 'GET', url: '/api/files/usage', headers: user.headers })).json<{ usedBytes: number }>().usedBytes;
    expect(await usage()).toBe(content.length);

    // The same form again, after /complete: S3 takes it; its event removes it.
    const late = nextOutcome(stagingKey);
    expect(await postToS3(issued, Buffer.from('other bytes, same length!!!!!!!'))).toBe(204);
    expect(await late).toBe('late-upload-removed');
    expect(await stagedCount(world.aws, world.names.PRIMARY_BUCKET, user.userId)).toBe(0);
    expect(await usage()).toBe(content.length);
    const link = await app.inject({ method: 'GET', url: `/api/files/${issued.id}/download?redirect=false`, headers: user.headers });
    expect(Buffer.from(await (await fetch(link.json<{ url: string }>().url)).arrayBuffer())).toEqual(content);
  });
});
