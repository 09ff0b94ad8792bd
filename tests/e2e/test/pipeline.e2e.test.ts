import { HeadObjectCommand, type HeadObjectCommandOutput, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '@scs/local-stack/emulator';
import { groupAlive, type RunningStack, startStack, stopStack } from '@scs/testing/stack';

/**
 * END TO END: the event pipeline through the real `npm start` (on free ports): a file uploaded
 * with "sensitive" ticked ends up in the sensitive bucket under SSE-KMS with no version left in
 * the primary bucket, moved by the sensitive mover's runner; it downloads with the same bytes;
 * backup-sync backs it up under the sensitive key; a delete removes it; an admin's restore brings
 * it back, encrypted, into the vault.
 */
const ADMIN = { username: 'e2e.pipeline.admin', password: 'operator pass phrase for the pipeline' };
const START_TIMEOUT_MS = 240_000;
const SETTLE_MS = 60_000;
const BUCKETS = { primary: 'scs-primary', sensitive: 'scs-sensitive', backup: 'scs-backup' };

describe('e2e: npm start, the sensitive mover and backup-sync', () => {
  let stack: RunningStack | undefined;
  let base: string;
  let s3: S3Client;
  let user: { id: string; headers: Record<string, string> };
  let admin: Record<string, string>;

  beforeAll(async () => {
    const ports = {
      EMULATOR_PORT: await freePort(),
      AUTH_PORT: await freePort(),
      UPLOAD_PORT: await freePort(),
      BACKUP_PORT: await freePort(),
      GATEWAY_PORT: await freePort(),
    };
    stack = await startStack(ports, { SCS_ADMIN_USERNAME: ADMIN.username, SCS_ADMIN_PASSWORD: ADMIN.password }, START_TIMEOUT_MS);
    base = `http://127.0.0.1:${ports.GATEWAY_PORT}`;
    // The stack's own emulator, to look at what S3 holds.
    s3 = new S3Client({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${ports.EMULATOR_PORT}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const username = `e2e.pipe.${Date.now().toString(36)}`;
    const password = 'Pipeline-Kettle-4471-quietly';
    expect((await postJson('/auth/register', { username, password })).status).toBe(201);
    const login = (await (await postJson('/auth/login', { username, password })).json()) as { accessToken: string; user: { id: string } };
    user = { id: login.user.id, headers: { authorization: `Bearer ${login.accessToken}` } };
    const adminLogin = (await (await postJson('/auth/login', ADMIN)).json()) as { accessToken: string };
    admin = { authorization: `Bearer ${adminLogin.accessToken}` };
  }, START_TIMEOUT_MS + 30_000);

  afterAll(async () => {
    s3?.destroy();
    if (stack?.child.pid && groupAlive(stack.child.pid)) process.kill(-stack.child.pid, 'SIGKILL');
  });

  const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base, ...headers }, body: JSON.stringify(body) });

  async function head(bucket: string, key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  }
  const primaryVersions = async (key: string) =>
    ((await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKETS.primary, Prefix: key }))).Versions ?? []).filter((v) => v.Key === key);

  /** Resolves once `check` holds: the pipeline works in the background, within seconds. */
  async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + SETTLE_MS;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within ${SETTLE_MS} ms: ${what}\n${stack?.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function uploadFile(name: string, content: Buffer, sensitive: boolean): Promise<{ id: string; key: string }> {
    const form = new FormData();
    form.append('sensitive', String(sensitive));
    form.append('file', new Blob([content]), name);
    const res = await fetch(`${base}/api/files`, { method: 'POST', headers: user.headers, body: form });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    return { id, key: `users/${user.id}/${id}` };
  }

  async function download(id: string): Promise<Buffer> {
    const res = await fetch(`${base}/api/files/${id}/download`, { headers: user.headers });
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  const content = Buffer.from('the launch codes, end to end');
  let file: { id: string; key: string };

  it('a file uploaded with "sensitive" ticked lands in the vault under SSE-KMS, with no version left in primary', async () => {
    file = await uploadFile('codes.txt', content, true);
    await eventually(async () => {
      const res = await fetch(`${base}/api/files/${file.id}`, { headers: user.headers });
      return ((await res.json()) as { location?: string }).location === 'sensitive';
    }, 'the file list says the file is in the vault');
    expect(await head(BUCKETS.sensitive, file.key)).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/scs-sensitive' });
    expect(await primaryVersions(file.key)).toEqual([]);
  });

  it('it downloads with the same bytes', async () => {
    expect(await download(file.id)).toEqual(content);
  });

  it('backup-sync backs it up under the sensitive key; a plain file under the backup key', async () => {
    const plain = await uploadFile('plain.txt', Buffer.from('nothing secret'), false);
    await eventually(async () => (await head(BUCKETS.backup, file.key)) !== undefined && (await head(BUCKETS.backup, plain.key)) !== undefined, 'both files are backed up');
    expect((await head(BUCKETS.backup, file.key))?.SSEKMSKeyId).toBe('alias/scs-sensitive');
    expect((await head(BUCKETS.backup, plain.key))?.SSEKMSKeyId).toBe('alias/scs-backup');
    const status = await fetch(`${base}/api/backup/status`, { headers: admin });
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ sensitiveObjects: expect.any(Number), backupObjects: expect.any(Number), lastEventAt: expect.any(String) });
    expect((await fetch(`${base}/api/backup/status`, { headers: user.headers })).status).toBe(403);
  });

  it('a delete removes it; an admin restore brings it back, encrypted into the vault, never into primary', async () => {
    expect((await fetch(`${base}/api/files/${file.id}`, { method: 'DELETE', headers: user.headers })).status).toBe(204);
    expect((await fetch(`${base}/api/files/${file.id}`, { headers: user.headers })).status).toBe(404);
    expect(await head(BUCKETS.sensitive, file.key)).toBeUndefined();

    const restored = await postJson('/api/backup/restore', { userId: user.id, fileId: file.id }, admin);
    expect(restored.status).toBe(200);
    expect(await restored.json()).toMatchObject({ id: file.id, userId: user.id, name: 'codes.txt', sensitive: true, location: 'sensitive' });
    expect(await head(BUCKETS.sensitive, file.key)).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/scs-sensitive' });
    expect(await primaryVersions(file.key)).toEqual([]);
    expect(await download(file.id)).toEqual(content);
  });

  it('SIGTERM stops every process, the mover runner included', async () => {
    if (!stack) throw new Error('no stack');
    const { groupGone } = await stopStack(stack);
    expect(groupGone).toBe(true);
  });
});
