import {
  DeleteBucketPolicyCommand,
  DeleteObjectsCommand,
  GetBucketPolicyCommand,
  ListObjectVersionsCommand,
  PutBucketPolicyCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { keysRotate } from '@scs/local-stack/cli/keys-rotate';
import { freePort } from '@scs/local-stack/emulator';
import { ManagedChild } from '@scs/local-stack/stack/child';
import { waitForHealthy } from '@scs/local-stack/stack/health';
import { type EmulatorIdentities, identitiesOfRoles, setIamEnforcement } from './emulator-iam';

const REPO_ROOT = resolve(__dirname, '../../..');

/**
 * The parity smoke test: the services configured only from what Terraform applied (the
 * `service_environment` the instances read from SSM, plus the emulator's endpoint), behind the
 * local gateway, do what a user does:
 * register, log in, upload, download, delete. The signing key comes from the ops command
 * (`keys:rotate`), as on AWS. Every step reports through `step`; the first failure stops it.
 */
export interface SmokeOptions {
  endpoint: string;
  serviceEnvironment: Record<string, string>;
  step: (name: string, failures: string[]) => boolean;
  log: (line: string) => void;
  timeoutMs: number;
  /**
   * The role Terraform gave each service (`auth`, `upload`, `backup-sync`). When given, the path
   * runs under IAM enforced by the emulator, each service with credentials of its own role
   * (emulator-iam.ts says what that does and does not check).
   */
  serviceRoles?: Record<(typeof SERVICES)[number]['name'], string>;
}

const SERVICES = [
  { name: 'auth', script: 'services/auth/dist/server.js' },
  { name: 'upload', script: 'services/upload/dist/server.js' },
  { name: 'backup-sync', script: 'services/backup-sync/dist/server.js' },
] as const;

/**
 * moto evaluates bucket policies without their conditions, so every conditional Deny (TLS only,
 * this encryption only) denies every object request. The smoke test runs with the data buckets'
 * policies set aside, and puts them back as they were afterwards (the re-plan checks that);
 * the policies themselves are checked by the IN-02 and IN-03 runs of terraform test. What the
 * test stored is removed again (every version) while the event targets still exist: moto fails
 * object deletions whose EventBridge target is gone, which would stall the final destroy. The
 * backup bucket's versions are under Object Lock (governance): the emulator's root credentials
 * remove them with the bypass, which no role of the project holds.
 */
export async function withoutBucketPolicies<T>(endpoint: string, region: string, buckets: string[], fn: () => Promise<T>): Promise<T> {
  const s3 = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const saved = new Map<string, string>();
  try {
    for (const bucket of buckets) {
      const { Policy } = await s3.send(new GetBucketPolicyCommand({ Bucket: bucket }));
      if (Policy) saved.set(bucket, Policy);
      await s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    }
    const result = await fn();
    for (const bucket of buckets) {
      // Each round deletes what the listing showed, so listing from the start again is right.
      for (;;) {
        const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
        const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map(({ Key, VersionId }) => ({ Key, VersionId }));
        if (objects.length === 0) break;
        const out = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true }, BypassGovernanceRetention: true }));
        if (out.Errors?.length) throw new Error(`${bucket}: could not remove the smoke test's objects: ${out.Errors[0]?.Code} ${out.Errors[0]?.Message}`);
      }
    }
    return result;
  } finally {
    for (const [bucket, policy] of saved) await s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: policy }));
    s3.destroy();
  }
}

export async function runSmokeTest(opts: SmokeOptions): Promise<void> {
  const env = opts.serviceEnvironment;
  const buckets = [env.PRIMARY_BUCKET, env.SENSITIVE_BUCKET, env.BACKUP_BUCKET].filter((b): b is string => Boolean(b));
  await withoutBucketPolicies(opts.endpoint, env.AWS_REGION ?? 'us-east-1', buckets, () => smokeTest(opts));
}

async function smokeTest(opts: SmokeOptions): Promise<void> {
  const { endpoint, serviceEnvironment: tfEnv } = opts;
  const lines: string[] = [];
  // A failed step shows what the services logged (warnings and errors) just before.
  const step = (name: string, failures: string[]) => opts.step(name, failures.length ? [...failures, ...lines.slice(-15)] : []);
  const aws = { AWS_ENDPOINT_URL: endpoint, AWS_REGION: tfEnv.AWS_REGION ?? 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };

  // The ops command writes the signing key into the parameters Terraform named, under its key.
  // Its SDK clients take credentials from the process environment (the emulator's).
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  const rotateOutput: string[] = [];
  const sink = { write: (text: string) => void rotateOutput.push(text) };
  const rotateEnv: NodeJS.ProcessEnv = { ...process.env, ...tfEnv, ...aws };
  const rotated = await keysRotate(['--local'], rotateEnv, sink, sink);
  if (!step('keys:rotate writes the signing key into the SSM parameters Terraform named', rotated === 0 ? [] : [rotateOutput.join('').trim()])) return;

  const children: ManagedChild[] = [];
  const ports: Record<string, number> = {};
  const abort = new AbortController();
  let identities: EmulatorIdentities | undefined;
  let enforced = false;
  try {
    if (opts.serviceRoles) {
      identities = await identitiesOfRoles(endpoint, aws.AWS_REGION, opts.serviceRoles);
      await setIamEnforcement(endpoint, true);
      enforced = true;
      opts.log(`IAM enforced by the emulator: ${Object.entries(opts.serviceRoles).map(([svc, role]) => `${svc} as ${role}`).join(', ')}`);
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...tfEnv,
      ...aws,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      COOKIE_SECURE: 'false',
      // The emulator run has no load balancer in front: the gateway is the trusted proxy.
      TRUSTED_PROXIES: '127.0.0.1/32,::1/128',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    for (const svc of SERVICES) ports[svc.name] = await freePort();
    const gatewayPort = await freePort();
    const spawnNode = (name: string, script: string, extra: NodeJS.ProcessEnv) => {
      const child = new ManagedChild(
        { name, command: process.execPath, args: [join(REPO_ROOT, script)], env: { ...env, ...extra }, cwd: REPO_ROOT },
        (n, line) => void lines.push(`${n} | ${line}`),
      );
      children.push(child);
      return child;
    };
    const url = (port: number) => `http://127.0.0.1:${port}`;
    const ownCredentials = (name: string): NodeJS.ProcessEnv => {
      const own = identities?.credentials[name];
      return own ? { AWS_ACCESS_KEY_ID: own.accessKeyId, AWS_SECRET_ACCESS_KEY: own.secretAccessKey } : {};
    };
    const starting = SERVICES.map((svc) => ({ svc, child: spawnNode(svc.name, svc.script, { PORT: String(ports[svc.name]), ...ownCredentials(svc.name) }) }));
    const gateway = spawnNode('gateway', 'packages/local-stack/dist/gateway/server.js', {
      GATEWAY_PORT: String(gatewayPort),
      AUTH_URL: url(ports.auth!),
      UPLOAD_URL: url(ports.upload!),
      BACKUP_URL: url(ports['backup-sync']!),
    });
    const waits = [...starting.map(({ svc, child }) => ({ name: svc.name, child, port: ports[svc.name]!, path: '/ready' })), { name: 'gateway', child: gateway, port: gatewayPort, path: '/health' }];
    const startFailures: string[] = [];
    await Promise.all(
      waits.map(({ name, child, port, path }) =>
        waitForHealthy(`${url(port)}${path}`, child, { timeoutMs: opts.timeoutMs, signal: abort.signal }).catch((err: Error) => {
          startFailures.push(`${name}: ${err.message}`, ...lines.filter((l) => l.startsWith(`${name} |`)).slice(-6));
        }),
      ),
    );
    if (!step('auth, upload and backup-sync are ready (GET /ready) with only the Terraform outputs as configuration', startFailures)) return;

    const base = url(gatewayPort);
    const json = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
      const text = await res.text();
      let body: Record<string, unknown> = {};
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        body = { text };
      }
      return { status: res.status, body };
    };
    const expectStatus = (what: string, got: { status: number; body: unknown }, want: number) =>
      got.status === want ? [] : [`${what}: HTTP ${got.status}, expected ${want}: ${JSON.stringify(got.body).slice(0, 300)}`];

    const username = `smoke-${randomUUID().slice(0, 8)}`;
    const password = `parity ${randomUUID()}`;
    const credentials = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) };
    const registered = await json('/auth/register', credentials);
    if (!step('register', expectStatus('POST /auth/register', registered, 201))) return;
    const login = await json('/auth/login', credentials);
    const token = login.body.accessToken;
    if (!step('log in', [...expectStatus('POST /auth/login', login, 200), ...(typeof token === 'string' ? [] : ['no accessToken'])])) return;
    const auth = { authorization: `Bearer ${String(token)}` };

    const content = `Secure Cloud Storage parity smoke test ${randomUUID()}\n`;
    const form = new FormData();
    form.append('file', new Blob([content], { type: 'text/plain' }), 'parity check.txt');
    const uploaded = await json('/api/files', { method: 'POST', headers: auth, body: form });
    const id = uploaded.body.id;
    if (!step('upload a file (primary bucket, files table)', expectStatus('POST /api/files', uploaded, 201))) return;

    const link = await json(`/api/files/${String(id)}/download?redirect=false`, { headers: auth });
    // moto checks no presigned URL under enforcement (emulator-iam.ts): the GET is let through.
    if (enforced) await setIamEnforcement(endpoint, false);
    const downloaded = typeof link.body.url === 'string' ? await fetch(link.body.url, { signal: AbortSignal.timeout(30_000) }) : undefined;
    const bytes = downloaded ? await downloaded.text() : '';
    if (enforced) await setIamEnforcement(endpoint, true);
    if (
      !step('download it through its presigned URL: the same bytes', [
        ...expectStatus('GET /api/files/{id}/download', link, 200),
        ...(downloaded?.status === 200 ? [] : [`presigned GET answered ${downloaded?.status}`]),
        ...(bytes === content ? [] : ['the downloaded bytes differ from the uploaded ones']),
      ])
    ) {
      return;
    }

    const deleted = await json(`/api/files/${String(id)}`, { method: 'DELETE', headers: auth });
    const gone = await json(`/api/files/${String(id)}`, { headers: auth });
    if (!step('delete it: 204, then 404', [...expectStatus('DELETE /api/files/{id}', deleted, 204), ...expectStatus('GET /api/files/{id} after delete', gone, 404)])) return;
    if (enforced) {
      const refused = lines.filter((l) => /AccessDenied|not authorized to perform/i.test(l));
      step('no AWS call of a service was refused under its own role (IAM enforced by the emulator)', refused.slice(0, 5));
    }
  } finally {
    abort.abort();
    await Promise.all(children.map((child) => child.stop(5_000)));
    if (enforced) await setIamEnforcement(endpoint, false);
    await identities?.remove();
  }
}
