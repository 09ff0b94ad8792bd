import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { bodyOf, type MoverWorld, moverWorld, s3Event, storeFile, versionsOf } from './helpers';

const root = join(__dirname, '..');
let world: MoverWorld;
beforeAll(async () => {
  world = await moverWorld('bundle');
});
afterAll(() => world.close());

async function zipEntries(path: string): Promise<string[]> {
  const zip = await yauzl.openPromise(path);
  const names: string[] = [];
  for await (const entry of zip.eachEntry()) names.push(entry.fileName);
  zip.close();
  return names;
}

/** Runs the bundled handler in a fresh Node process, as the Lambda runtime would (`index.handler`). */
function invokeBundle(event: unknown): { status: number | null; stdout: string; stderr: string } {
  const script = `require(process.argv[1]).handler(JSON.parse(process.argv[2]), { awsRequestId: 'bundle-test' })
    .then((r) => process.stdout.write(JSON.stringify(r)), (e) => { process.stderr.write(String(e)); process.exit(1); });`;
  const res = spawnSync(process.execPath, ['-e', script, join(root, 'dist/lambda/index.js'), JSON.stringify(event)], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      PRIMARY_BUCKET: world.names.PRIMARY_BUCKET,
      SENSITIVE_BUCKET: world.names.SENSITIVE_BUCKET,
      SENSITIVE_KMS_KEY_ID: world.names.SENSITIVE_KMS_KEY_ID,
      FILES_TABLE: world.names.FILES_TABLE,
      LOG_LEVEL: 'silent',
    },
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('the Lambda deployment package', () => {
  beforeAll(() => {
    // `npm run bundle` minus the tsc step (the test run builds first).
    const res = spawnSync(process.execPath, [join(root, 'scripts/bundle.mjs')], { cwd: root, encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`bundle failed: ${res.stderr}${res.stdout}`);
  }, 120_000);

  it('is dist/lambda.zip with index.js at its root (handler index.handler)', async () => {
    expect(await zipEntries(join(root, 'dist/lambda.zip'))).toContain('index.js');
  });

  it('moves a sensitive file when invoked with an S3 event, in a process of its own', async () => {
    const file = await storeFile(world, { sensitive: true });
    const out = invokeBundle(s3Event(world.names.PRIMARY_BUCKET, file.key, file.versionId));
    expect(out).toMatchObject({ status: 0, stderr: '' });
    expect(JSON.parse(out.stdout)).toEqual({ results: [{ key: file.key, versionId: file.versionId, outcome: 'moved' }] });
    expect(await bodyOf(world.aws.s3, world.names.SENSITIVE_BUCKET, file.key)).toEqual(file.content);
    expect((await versionsOf(world.aws.s3, world.names.PRIMARY_BUCKET, file.key)).versions).toHaveLength(0);
  });

  it('fails an invocation with an invalid event (so it reaches the on-failure destination)', () => {
    const out = invokeBundle({ Records: [{ eventSource: 'aws:sqs' }] });
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('InvalidEvent');
  });
});
