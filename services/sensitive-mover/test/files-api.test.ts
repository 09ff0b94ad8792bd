import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { asEnv } from '@scs/testing/isolated';
import { buildApp } from '@scs/upload';
import { UploadConfig } from '@scs/upload/config';
import { closeAuth, newUser, upload } from '@scs/testing/upload-app';
import { createHandler } from '../src/handler';
import { faultyClients, type MoverWorld, moverWorld, s3Event, silent } from './helpers';

/**
 * The file API around a move: a sensitive file can be listed, read, downloaded and deleted before
 * the move, in the middle of it (copied but not yet removed; removed but the record not yet
 * updated) and after it; and the API says where the file is.
 */
let world: MoverWorld;
let app: FastifyInstance;
beforeAll(async () => {
  world = await moverWorld('filesapi');
  app = await buildApp(loadConfig(UploadConfig, { ...process.env, ...asEnv(world.names), LOG_LEVEL: 'silent', UPLOADS_PER_MINUTE: '100000' }), { aws: world.aws });
});
afterAll(async () => {
  await app.close();
  await closeAuth();
  world.close();
});

async function uploadSensitive(headers: Record<string, string>, content: Buffer) {
  const res = await upload(app, headers, [{ name: 'sensitive', value: 'true' }, { name: 'file', filename: 'vault.txt', content }]);
  expect(res.statusCode).toBe(201);
  return res.json<{ id: string }>().id;
}

/** Everything a user does with a file works and agrees with what is stored. */
async function usable(headers: Record<string, string>, id: string, content: Buffer, location: 'primary' | 'sensitive') {
  const one = await app.inject({ method: 'GET', url: `/api/files/${id}`, headers });
  expect(one.statusCode).toBe(200);
  expect(one.json()).toMatchObject({ id, sensitive: true, location });
  const list = await app.inject({ method: 'GET', url: '/api/files', headers });
  expect(list.json<{ items: { id: string; location: string }[] }>().items.find((i) => i.id === id)).toMatchObject({ location });
  const link = await app.inject({ method: 'GET', url: `/api/files/${id}/download?redirect=false`, headers });
  expect(link.statusCode).toBe(200);
  expect(Buffer.from(await (await fetch(link.json<{ url: string }>().url)).arrayBuffer())).toEqual(content);
}

async function deletedEverywhere(headers: Record<string, string>, id: string, key: string) {
  expect((await app.inject({ method: 'DELETE', url: `/api/files/${id}`, headers })).statusCode).toBe(204);
  expect((await app.inject({ method: 'GET', url: `/api/files/${id}`, headers })).statusCode).toBe(404);
  for (const Bucket of [world.names.PRIMARY_BUCKET, world.names.SENSITIVE_BUCKET]) {
    const versions = await world.aws.s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: key }));
    // Delete markers may stay; no current object does.
    expect((versions.Versions ?? []).filter((v) => v.IsLatest)).toHaveLength(0);
  }
}

describe('a sensitive file through its move', () => {
  it('before the move: "moving" (location primary), downloadable, deletable', async () => {
    const user = await newUser();
    const content = Buffer.from('not moved yet');
    const id = await uploadSensitive(user.headers, content);
    await usable(user.headers, id, content, 'primary');
    await deletedEverywhere(user.headers, id, `users/${user.userId}/${id}`);
  });

  it('after the move: in the vault (location sensitive), downloaded from there, deletable', async () => {
    const user = await newUser();
    const content = Buffer.from('moved to the vault');
    const id = await uploadSensitive(user.headers, content);
    const key = `users/${user.userId}/${id}`;
    expect((await createHandler(world.mover(), silent)(s3Event(world.names.PRIMARY_BUCKET, key), { awsRequestId: 'r' })).results[0]?.outcome).toBe('moved');
    await usable(user.headers, id, content, 'sensitive');
    const link = await app.inject({ method: 'GET', url: `/api/files/${id}/download?redirect=false`, headers: user.headers });
    expect(link.json<{ url: string }>().url).toContain(world.names.SENSITIVE_BUCKET);
    await deletedEverywhere(user.headers, id, key);
  });

  it('during the move (copied, source not yet removed; then removed, record not yet updated): still usable', async () => {
    const user = await newUser();
    const content = Buffer.from('in the middle of a move');
    const id = await uploadSensitive(user.headers, content);
    const key = `users/${user.userId}/${id}`;
    // Stop after the copy ...
    const stopAfterCopy = faultyClients((command, input) => (command === 'DeleteObjectCommand' && input.Bucket === world.names.PRIMARY_BUCKET ? new Error('stopped') : undefined));
    // ... and after the source is removed, before the record update.
    const stopBeforeRecord = faultyClients(() => undefined);
    stopBeforeRecord.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateItemCommand') throw new Error('stopped');
        return next(args);
      },
      { step: 'initialize', name: 'stopBeforeRecord' },
    );
    try {
      const event = s3Event(world.names.PRIMARY_BUCKET, key);
      await expect(createHandler(world.mover({ aws: stopAfterCopy }), silent)(event, { awsRequestId: 'a' })).rejects.toThrow('stopped');
      await usable(user.headers, id, content, 'primary');
      await expect(createHandler(world.mover({ aws: stopBeforeRecord }), silent)(event, { awsRequestId: 'b' })).rejects.toThrow('stopped');
      await usable(user.headers, id, content, 'primary');
      await createHandler(world.mover(), silent)(event, { awsRequestId: 'c' });
      await usable(user.headers, id, content, 'sensitive');
      await deletedEverywhere(user.headers, id, key);
    } finally {
      stopAfterCopy.destroy();
      stopBeforeRecord.destroy();
    }
  });
});
