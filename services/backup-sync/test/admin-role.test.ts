import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createAwsClients, loadConfig } from '@scs/common';
import type { FastifyInstance } from 'fastify';
import { buildTestApp, signedIn, type TestApp, uniqueName } from '@scs/testing/auth-app';
import { buildApp } from '../src/app';
import { BackupConfig } from '../src/config';

/** backup-sync's admin routes against a real auth service and users table on the emulator. */
let auth: TestApp;
let backup: FastifyInstance;
let config: BackupConfig;
const aws = createAwsClients(loadConfig(BackupConfig, process.env));

beforeAll(async () => {
  auth = await buildTestApp();
  config = loadConfig(BackupConfig, { ...process.env, LOG_LEVEL: 'silent' });
  backup = await buildApp(config, { aws });
});
afterAll(async () => {
  await Promise.all([auth.app.close(), backup.close()]);
  aws.destroy();
});

const PASSWORD = 'operator pass phrase for backups';
// Past the admin check: the route answers.
const ADMITTED = [200];
const status = (token: string) => backup.inject({ method: 'GET', url: '/api/backup/status', headers: { authorization: `Bearer ${token}` } });
const setRole = (username: string, role: string) =>
  aws.dynamo.send(
    new UpdateCommand({
      TableName: config.USERS_TABLE,
      Key: { username },
      UpdateExpression: 'SET #role = :role',
      ExpressionAttributeNames: { '#role': 'role' },
      ExpressionAttributeValues: { ':role': role },
    }),
  );

async function adminToken(): Promise<{ username: string; token: string }> {
  const username = uniqueName('admin');
  await auth.app.authService.seedAdmin(username, PASSWORD);
  const res = await auth.app.inject({ method: 'POST', url: '/auth/login', payload: { username, password: PASSWORD } });
  return { username, token: res.json().accessToken as string };
}

describe('backup-sync admin routes act on the current role', () => {
  it('an admin passes; a user is 403', async () => {
    const admin = await adminToken();
    expect(ADMITTED).toContain((await status(admin.token)).statusCode);
    const user = await signedIn(auth.app);
    const res = await status(user.accessToken);
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('FORBIDDEN');
  });

  it('a demoted admin is refused at once (403), with the access token issued before the demotion', async () => {
    const admin = await adminToken();
    expect(ADMITTED).toContain((await status(admin.token)).statusCode);
    await setRole(admin.username, 'user');
    const res = await status(admin.token);
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('FORBIDDEN');
  });
});
