import { createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { buildApp as buildAuth } from '@scs/auth';
import { AuthConfig } from '@scs/auth/config';
import { buildApp as buildBackup } from '@scs/backup-sync';
import { BackupConfig } from '@scs/backup-sync/config';
import { buildApp as buildUpload } from '@scs/upload';
import { UploadConfig } from '@scs/upload/config';
import { buildGateway, GatewayConfig } from '@scs/local-stack/gateway/app';

/**
 * The product's three services and the gateway in this process, each on its own loopback port,
 * against the test run's AWS emulator: the same apps and gateway as `npm start`, reached over
 * real sockets, with settings a test can choose (small limits, short timeouts).
 */
export interface InProcessStack {
  /** The gateway's base URL (`http://127.0.0.1:port`): what a client talks to. */
  url: string;
  services: { auth: string; upload: string; 'backup-sync': string };
  auth: FastifyInstance;
  /** Log lines at level warn and above from every server, parsed. */
  problems: Record<string, unknown>[];
  close(): Promise<void>;
}

export const PASSWORD = 'Tangerine-Kettle-4471-quietly';

const listen = async (app: FastifyInstance) => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
};

/** `env` overrides settings of every service (e.g. `MAX_UPLOAD_BYTES`); `fastify` their server options. */
export async function startInProcessStack(env: Record<string, string> = {}, fastify: Partial<FastifyServerOptions> = {}): Promise<InProcessStack> {
  const problems: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) problems.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const settings = {
    ...process.env,
    COOKIE_SECURE: 'false',
    // Every client of a test comes from 127.0.0.1: per-address limits would only measure the test.
    LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
    REGISTER_RATE_LIMIT_PER_MINUTE: '100000',
    REGISTER_RATE_LIMIT_PER_HOUR: '100000',
    REFRESH_RATE_LIMIT_PER_MINUTE: '100000',
    HASH_CONCURRENCY_PER_ADDRESS: '100000',
    ...env,
  };
  const options = (): Partial<FastifyServerOptions> => ({ logger: { level: 'warn', stream }, ...fastify });
  const authConfig = loadConfig(AuthConfig, settings);
  const uploadConfig = loadConfig(UploadConfig, settings);
  const backupConfig = loadConfig(BackupConfig, settings);
  const clients = [createAwsClients(authConfig), createAwsClients(uploadConfig), createAwsClients(backupConfig)];
  const apps: FastifyInstance[] = [];
  const close = async () => {
    for (const app of apps.reverse()) await app.close();
    for (const aws of clients) aws.destroy();
  };
  try {
    const auth = await buildAuth(authConfig, { aws: clients[0]!, fastify: options() });
    apps.push(auth);
    const upload = await buildUpload(uploadConfig, { aws: clients[1]!, fastify: options() });
    apps.push(upload);
    const backup = await buildBackup(backupConfig, { aws: clients[2]!, fastify: options() });
    apps.push(backup);
    const services = { auth: await listen(auth), upload: await listen(upload), 'backup-sync': await listen(backup) };
    const gateway = await buildGateway(
      loadConfig(GatewayConfig, { AUTH_URL: services.auth, UPLOAD_URL: services.upload, BACKUP_URL: services['backup-sync'] }),
      { logger: { level: 'warn', stream } },
    );
    apps.push(gateway);
    return { url: await listen(gateway), services, auth, problems, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface Account {
  username: string;
  userId: string;
  accessToken: string;
  headers: { authorization: string };
}

/** Registers and signs in a fresh account through the gateway; `admin` seeds it as an admin first. */
export async function signUp(stack: InProcessStack, opts: { admin?: boolean } = {}): Promise<Account> {
  const username = `t${randomUUID().replace(/-/g, '').slice(0, 14)}`;
  const credentials = JSON.stringify({ username, password: PASSWORD });
  const json = { 'content-type': 'application/json' };
  if (opts.admin) {
    await (stack.auth as FastifyInstance & { authService: { seedAdmin(u: string, p: string): Promise<unknown> } }).authService.seedAdmin(username, PASSWORD);
  } else {
    const registered = await fetch(`${stack.url}/auth/register`, { method: 'POST', headers: json, body: credentials });
    if (registered.status !== 201) throw new Error(`register failed: ${registered.status} ${await registered.text()}`);
  }
  const res = await fetch(`${stack.url}/auth/login`, { method: 'POST', headers: json, body: credentials });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { accessToken: string; user: { id: string } };
  return { username, userId: body.user.id, accessToken: body.accessToken, headers: { authorization: `Bearer ${body.accessToken}` } };
}
