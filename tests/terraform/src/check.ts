import { ACMClient, RequestCertificateCommand } from '@aws-sdk/client-acm';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, motoPython, type RunningEmulator, startEmulator } from '@scs/local-stack/emulator';
import { checkConventions } from './conventions';
import { type AppliedIam, evaluateInventories, readInventories } from './iam-evaluation';
import { analyseReplan, type ResourceChange } from './drift';
import { appliedListenerRules, compareWithGateway } from './listener-rules';
import { runSmokeTest, withoutBucketPolicies } from './smoke';

/**
 * `node scripts/bin/terraform-check.mjs` (a step of `npm test`): what Terraform cannot do by
 * itself around the root module in terraform/. Terraform checks formatting, validity and,
 * in `terraform test` (terraform/tests/*.tftest.hcl), the security controls on a real apply of
 * the whole module; this harness starts the AWS emulator and points the provider at it, makes
 * the inputs the emulator run needs (a certificate, the Lambda zip), checks the conventions
 * tflint would, runs the parity smoke test while `terraform test` holds the applied
 * infrastructure (services configured from the configuration Terraform wrote), compares the
 * applied load balancer rules with the local gateway's, and reads the re-plan, which must
 * change nothing. One PASS/FAIL line per check; exit code 1 on any failure.
 *
 * It also writes a backup under backup-sync's role into the applied backup bucket and sees the
 * delete of its locked version refused (IN-15), and evaluates every call of the services' IAM
 * inventories, and a deny list, against the policies the apply produced (IN-14).
 *
 * Settings (environment): TF_PROVIDER_MIRROR (root of a provider filesystem mirror),
 * TF_CHECK_TIMEOUT_SECONDS (whole run, default 1200), TF_CHECK_KEEP_TMP=1 (keep the work
 * directory, with iam-evaluation.json: the applied policies), PYTHON (the interpreter that has moto).
 */

const REPO_ROOT = resolve(__dirname, '../../..');
const SOURCE_DIR = join(REPO_ROOT, 'terraform');
const MOVER_DIR = join(REPO_ROOT, 'services/sensitive-mover');
const REGION = 'us-east-1';
/** The environment terraform/tests/controls.tftest.hcl applies. */
const ENVIRONMENT = 'test';
/** `<name_prefix>-<environment>` with the default prefix: target group names are `<name>-<service>`. */
const NAME = `scs-${ENVIRONMENT}`;
const MIRROR_MARKER = join('registry.terraform.io', 'hashicorp', 'aws');

const startedAt = Date.now();
const budgetMs = Number(process.env.TF_CHECK_TIMEOUT_SECONDS ?? 1200) * 1000;
const remainingMs = () => budgetMs - (Date.now() - startedAt);

const counts = { pass: 0, fail: 0 };
let lastReportAt = Date.now();

function line(status: string, name: string, detail?: string): void {
  const now = Date.now();
  const text = `${status.padEnd(4)}  ${name} [${((now - lastReportAt) / 1000).toFixed(1)} s]`;
  lastReportAt = now;
  console.log(detail ? `${text}: ${detail}` : text);
}

/** One check: PASS without failures, else FAIL with them. Returns whether it passed. */
function check(name: string, failures: string[], detail?: string): boolean {
  if (failures.length === 0) {
    counts.pass += 1;
    line('PASS', name, detail);
    return true;
  }
  counts.fail += 1;
  line('FAIL', name, failures.join('\n      '));
  return false;
}

const info = (text: string) => console.log(`INFO  ${text}`);
const indent = (text: string, lines = 25) =>
  text
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((l) => `      | ${l}`)
    .join('\n');

// ---------------------------------------------------------------------------------------------
// Processes: each runs in its own process group, so it and its provider plugins stop together.

const running = new Set<ChildProcess>();

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed at the deadline); `onLine` sees stdout line by line. */
function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; onLine?: (line: string, child: ChildProcess) => void }): Promise<RunResult> {
  const limit = Math.max(1_000, Math.min(opts.timeoutMs, remainingMs()));
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-200_000)));
    if (opts.onLine) {
      const onLine = opts.onLine;
      createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (l) => onLine(l, child));
    } else {
      child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-200_000)));
    }
    const timer = setTimeout(() => {
      stderr += `\n(timed out after ${Math.round(limit / 1000)} s)`;
      signalGroup(child, 'SIGCONT');
      signalGroup(child, 'SIGTERM');
      setTimeout(() => signalGroup(child, 'SIGKILL'), 10_000).unref();
    }, limit);
    child.once('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      done({ code: null, stdout, stderr: `${stderr}${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      done({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Terraform's environment: the provider mirror, and nothing of the caller's Terraform or AWS setup.

/** The root of a filesystem mirror that holds hashicorp/aws: TF_PROVIDER_MIRROR, or searched. */
export function findProviderMirror(env: NodeJS.ProcessEnv = process.env): { root: string; source: string } | undefined {
  if (env.TF_PROVIDER_MIRROR) return { root: resolve(env.TF_PROVIDER_MIRROR), source: 'TF_PROVIDER_MIRROR' };
  const dataHome = env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share');
  const conventional = [
    join(homedir(), '.terraform.d', 'plugins'),
    join(dataHome, 'terraform', 'plugins'),
    '/usr/local/share/terraform/plugins',
    '/usr/share/terraform/plugins',
    '/usr/share/terraform/providers',
  ];
  const root = conventional.find((dir) => existsSync(join(dir, MIRROR_MARKER)));
  if (root) return { root, source: 'conventional location' };
  // Not under temporary directories or Terraform working directories: those hold links into a mirror, not one.
  const prune = ['(', '-path', '/tmp', '-o', '-path', '/proc', '-o', '-path', tmpdir(), '-o', '-name', '.terraform', '-o', '-name', 'node_modules', ')', '-prune', '-o'];
  const found = spawnSync('find', ['/', '-xdev', '-maxdepth', '7', ...prune, '-type', 'd', '-path', `*/${MIRROR_MARKER}`, '-print', '-quit'], {
    encoding: 'utf8',
    timeout: 30_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const hit = (found.stdout ?? '').split('\n').find(Boolean);
  return hit ? { root: resolve(hit, '..', '..', '..'), source: 'found by search' } : undefined;
}

function terraformEnv(workDir: string, mirror: { root: string } | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(TF_VAR_|TF_CLI_ARGS|TF_WORKSPACE$|TF_DATA_DIR$|AWS_)/.test(key)) continue;
    env[key] = value;
  }
  Object.assign(env, {
    CHECKPOINT_DISABLE: '1',
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    // The emulator's credentials, and none of the operator's AWS configuration.
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: REGION,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(workDir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(workDir, 'no-aws-credentials'),
  });
  const config = join(workDir, 'terraform.rc');
  const installation = mirror
    ? [
        'provider_installation {',
        '  filesystem_mirror {',
        `    path    = ${JSON.stringify(mirror.root).replaceAll('${', '$${')}`,
        '    include = ["registry.terraform.io/hashicorp/*"]',
        '  }',
        '  direct {',
        '    exclude = ["registry.terraform.io/hashicorp/*"]',
        '  }',
        '}',
      ]
    : [];
  // Always our own file: the environment may name one that does not exist.
  writeFileSync(config, `${installation.join('\n')}\n`);
  env.TF_CLI_CONFIG_FILE = config;
  return env;
}

// ---------------------------------------------------------------------------------------------
// Inputs of the emulator run

/**
 * The sensitive-mover's deployment package: the real one when its workspace can bundle it,
 * else a placeholder zip (the emulator never runs Lambda code), said loudly.
 */
async function lambdaZip(workDir: string): Promise<string | undefined> {
  const manifest = join(MOVER_DIR, 'package.json');
  const scripts = existsSync(manifest) ? ((JSON.parse(readFileSync(manifest, 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {}) : {};
  if (scripts.bundle) {
    const bundle = await run('npm', ['run', 'bundle', '--silent'], { cwd: MOVER_DIR, env: process.env, timeoutMs: 180_000 });
    const zip = join(MOVER_DIR, 'dist', 'lambda.zip');
    const maps = bundle.code === 0 && existsSync(zip) ? zipEntries(zip).filter((name) => name.endsWith('.map')) : [];
    return check(
      'sensitive-mover bundle (npm run bundle -w @scs/sensitive-mover), without a source map',
      bundle.code === 0 && existsSync(zip) ? maps.map((name) => `the package carries ${name}`) : [indent(bundle.stderr || bundle.stdout)],
      zip,
    )
      ? zip
      : undefined;
  }
  writeFileSync(join(workDir, 'index.js'), 'exports.handler = async () => { throw new Error("placeholder package"); };\n');
  const zip = join(workDir, 'lambda-placeholder.zip');
  const made = spawnSync(motoPython(REPO_ROOT), ['-m', 'zipfile', '-c', zip, 'index.js'], { cwd: workDir, encoding: 'utf8' });
  info('NOTE: services/sensitive-mover has no "bundle" script yet: the emulator run deploys a placeholder zip (the emulator never runs Lambda code)');
  return check('placeholder Lambda zip', made.status === 0 ? [] : [made.stderr], zip) ? zip : undefined;
}

/** The names of the files in a zip (Python's zipfile, present with moto). */
function zipEntries(zip: string): string[] {
  const listed = spawnSync(motoPython(REPO_ROOT), ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', zip], { encoding: 'utf8' });
  return (listed.stdout ?? '').split('\n').filter(Boolean);
}

/** An ACM certificate in the emulator, for the HTTPS listener (on AWS the operator's). */
export async function emulatorCertificate(endpoint: string): Promise<string> {
  const acm = new ACMClient({ endpoint, region: REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  try {
    const out = await acm.send(new RequestCertificateCommand({ DomainName: 'files.example.test', ValidationMethod: 'DNS' }));
    if (!out.CertificateArn) throw new Error('ACM returned no certificate ARN');
    return out.CertificateArn;
  } finally {
    acm.destroy();
  }
}

/** The name names the services' configuration parameter. */
const SERVICE_ENVIRONMENT_PARAMETER = `/${NAME}/config/service-environment`;

async function readServiceEnvironment(endpoint: string): Promise<Record<string, string> | undefined> {
  const ssm = new SSMClient({ endpoint, region: REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: SERVICE_ENVIRONMENT_PARAMETER, WithDecryption: true }));
    return out.Parameter?.Value ? (JSON.parse(out.Parameter.Value) as Record<string, string>) : undefined;
  } finally {
    ssm.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Backups that the serving roles cannot destroy (IN-15), on the applied backup bucket

const ADMIN = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * Under backup-sync's role (credentials from the emulator's STS for the applied role), a backup
 * written as backup-sync writes it is locked: the delete of its version is refused, the version
 * stays readable (a restore reads versions), and a plain delete only hides it behind a delete
 * marker. The emulator's root credentials remove both afterwards with the governance bypass.
 * Returns the failures.
 */
async function objectLockCheck(endpoint: string, env: Record<string, string>): Promise<string[]> {
  const sts = new STSClient({ endpoint, region: REGION, credentials: ADMIN });
  const admin = new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: ADMIN });
  let backupSync: S3Client | undefined;
  const Bucket = env.BACKUP_BUCKET ?? '';
  const Key = `users/object-lock-check/${Date.now()}`;
  const failures: string[] = [];
  const written: string[] = [];
  try {
    const { Account } = await sts.send(new GetCallerIdentityCommand({}));
    const role = await sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${Account}:role/${NAME}-backup-sync`, RoleSessionName: 'object-lock-check' }));
    const c = role.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) return ['the emulator gave no credentials for the backup-sync role'];
    backupSync = new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken } });
    const put = await backupSync.send(
      new PutObjectCommand({ Bucket, Key, Body: 'a backup', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: env.BACKUP_KMS_KEY_ID }),
    );
    const VersionId = put.VersionId;
    if (!VersionId) return ['the backup bucket gave the backup no version'];
    written.push(VersionId);
    const head = await backupSync.send(new HeadObjectCommand({ Bucket, Key, VersionId }));
    if (head.ObjectLockMode !== 'GOVERNANCE' || !head.ObjectLockRetainUntilDate || head.ObjectLockRetainUntilDate.getTime() < Date.now() + 86_400_000) {
      failures.push(`the new version is not locked by the bucket's default retention (mode ${head.ObjectLockMode}, until ${head.ObjectLockRetainUntilDate?.toISOString()})`);
    }
    const refused = await backupSync.send(new DeleteObjectCommand({ Bucket, Key, VersionId })).then(
      () => undefined,
      (err: Error) => err.name,
    );
    if (!refused) {
      written.pop();
      failures.push('backup-sync deleted a locked backup version');
      return failures;
    }
    const marker = await backupSync.send(new DeleteObjectCommand({ Bucket, Key }));
    if (marker.VersionId) written.push(marker.VersionId);
    const read = await backupSync.send(new GetObjectCommand({ Bucket, Key, VersionId }));
    const body = await read.Body?.transformToString();
    if (body !== 'a backup') failures.push(`the locked version reads back as ${JSON.stringify(body)}`);
    info(`object lock: backup-sync's delete of a locked version was refused (${refused}); the version stays readable behind a delete marker`);
  } catch (err) {
    failures.push((err as Error).stack ?? String(err));
  } finally {
    for (const VersionId of written) {
      await admin.send(new DeleteObjectCommand({ Bucket, Key, VersionId, BypassGovernanceRetention: true })).catch((err: Error) => failures.push(`clean-up: ${err.message}`));
    }
    backupSync?.destroy();
    admin.destroy();
    sts.destroy();
  }
  return failures;
}

/**
 * IAM proven by evaluation (IN-14): every call in the services' inventories against the policies
 * the apply produced, and the deny list. One check per principal.
 */
async function iamEvaluation(applied: AppliedIam | undefined, workRoot: string): Promise<void> {
  if (!applied) {
    check('IAM evaluation', ['the apply reported no iam_evaluation output']);
    return;
  }
  // Kept with TF_CHECK_KEEP_TMP=1: the applied policies, to evaluate again without an apply.
  writeFileSync(join(workRoot, 'iam-evaluation.json'), `${JSON.stringify(applied, null, 2)}\n`);
  const sim = await import('@cloud-copilot/iam-simulate');
  const reports = await evaluateInventories(sim, applied, readInventories(REPO_ROOT));
  for (const report of reports) {
    check(
      `IAM evaluation (iam-simulate): ${report.principal}'s calls allowed, its deny list denied`,
      report.failures,
      `${report.allowed} allowed, ${report.denied} denied`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// terraform test, watched line by line (-json -verbose)

interface TestMessage {
  type: string;
  '@message': string;
  '@testrun'?: string;
  test_run?: { run: string; progress: string; status?: string };
  test_state?: { outputs?: Record<string, { value: unknown }>; root_module?: Parameters<typeof appliedListenerRules>[0] };
  test_plan?: { resource_changes?: ResourceChange[] };
  diagnostic?: { severity: string; summary: string; detail?: string; range?: { filename: string; start: { line: number } } };
  test_summary?: { status: string; passed?: number; failed?: number; errored?: number; skipped?: number };
}

async function terraformTest(workDir: string, env: NodeJS.ProcessEnv, endpoint: string, vars: Record<string, string>): Promise<void> {
  const diagnostics = new Map<string, string[]>();
  let summary: TestMessage['test_summary'];
  let appliedState: TestMessage['test_state'];
  let replan: ResourceChange[] | undefined;
  let paused: Promise<void> | undefined;
  let currentRun = '';

  // While the infrastructure stands: the parity smoke test. terraform test is stopped (SIGSTOP) the
  // moment it reports the apply, before it serialises the state, and continues afterwards.
  const whileApplied = async (child: ChildProcess) => {
    signalGroup(child, 'SIGSTOP');
    try {
      // What the instances read at start-up (compute.tf): Terraform's configuration parameter.
      const serviceEnvironment = await readServiceEnvironment(endpoint);
      if (!check(`the services' configuration in SSM (${SERVICE_ENVIRONMENT_PARAMETER})`, serviceEnvironment ? [] : ['missing'])) return;
      await runSmokeTest({
        endpoint,
        serviceEnvironment: serviceEnvironment!,
        timeoutMs: Math.max(30_000, Math.min(120_000, remainingMs() - 120_000)),
        log: info,
        step: (name, failures) => check(`parity smoke test: ${name}`, failures.map((f) => indent(f, 20))),
        serviceRoles: { auth: `${NAME}-auth`, upload: `${NAME}-upload`, 'backup-sync': `${NAME}-backup-sync` },
      });
      // The emulator applies a bucket policy's Deny statements without their conditions (smoke.ts).
      const env = serviceEnvironment!;
      const lock = await withoutBucketPolicies(endpoint, REGION, [env.BACKUP_BUCKET ?? ''], () => objectLockCheck(endpoint, env));
      check("object lock: backup-sync's role cannot delete a locked backup version (IN-15)", lock);
    } catch (err) {
      check('parity smoke test', [(err as Error).stack ?? String(err)]);
    } finally {
      signalGroup(child, 'SIGCONT');
    }
  };

  const args = ['test', '-json', '-verbose', '-no-color', ...Object.entries(vars).flatMap(([k, v]) => ['-var', `${k}=${v}`])];
  const result = await run('terraform', args, {
    cwd: workDir,
    env,
    timeoutMs: remainingMs() - 5_000,
    onLine: (text, child) => {
      let message: TestMessage;
      try {
        message = JSON.parse(text) as TestMessage;
      } catch {
        return;
      }
      const runName = message['@testrun'] ?? message.test_run?.run ?? currentRun;
      if (message.type === 'test_run' && message.test_run?.progress === 'starting') currentRun = message.test_run.run;
      if (message.type === 'test_run' && message.test_run?.progress === 'complete') {
        const status = message.test_run.status ?? 'unknown';
        const failures = status === 'pass' ? [] : [`${status}`, ...(diagnostics.get(runName) ?? [])];
        check(`terraform test: run "${runName}"`, failures);
        if (runName === 'apply' && status === 'pass') paused = whileApplied(child);
      } else if (message.type === 'diagnostic' && message.diagnostic?.severity === 'error') {
        const d = message.diagnostic;
        const where = d.range ? ` (${d.range.filename}:${d.range.start.line})` : '';
        const list = diagnostics.get(runName) ?? [];
        list.push(`${d.summary}${where}: ${(d.detail ?? '').trim()}`);
        diagnostics.set(runName, list);
      } else if (message.type === 'test_state' && runName === 'apply' && message.test_state) {
        appliedState = message.test_state;
      } else if (message.type === 'test_plan' && runName === 'replan') {
        replan = message.test_plan?.resource_changes ?? [];
      } else if (message.type === 'test_summary') {
        summary = message.test_summary;
      }
    },
  });
  await paused;

  await iamEvaluation(appliedState?.outputs?.iam_evaluation?.value as AppliedIam | undefined, resolve(workDir, '..'));
  check(
    "ALB listener rules agree with the local gateway's PATH_RULES and PRIVATE_PATHS (/metrics answered 404)",
    appliedState ? compareWithGateway(appliedListenerRules(appliedState.root_module, NAME)) : ['the applied state was not reported'],
  );
  if (replan) {
    const drift = analyseReplan(replan);
    for (const e of drift.explained) info(`re-plan: ${e.address} (${e.attributes.join(', ')}) is a known emulator difference: ${e.reason}`);
    check(
      'terraform plan after apply changes nothing',
      drift.unexplained.map((u) => `${u.address}: ${u.actions.join('/')} (${u.attributes.join(', ')})`),
      drift.explained.length ? `${drift.explained.length} known emulator difference(s), see INFO lines` : undefined,
    );
  } else {
    check('terraform plan after apply changes nothing', ['the re-plan did not run']);
  }
  const unattributed = [...diagnostics].filter(([run]) => run === '').flatMap(([, list]) => list);
  check(
    `terraform test (${summary ? `${summary.passed ?? 0} passed, ${summary.failed ?? 0} failed, ${summary.errored ?? 0} errored, ${summary.skipped ?? 0} skipped` : 'no summary'})`,
    [...(result.code === 0 && summary?.status === 'pass' ? [] : [`exit code ${result.code}`, indent(result.stderr)]), ...unattributed],
  );
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log('terraform-check: terraform/');
  const workRoot = mkdtempSync(join(tmpdir(), 'scs-terraform-check-'));
  const emulators: RunningEmulator[] = [];
  const cleanUp = () => {
    for (const child of running) {
      signalGroup(child, 'SIGCONT');
      signalGroup(child, 'SIGKILL');
    }
  };
  process.once('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.log(`FAIL  interrupted by ${signal}`);
      cleanUp();
      for (const emulator of emulators) emulator.child.kill('SIGKILL');
      process.exit(1);
    });
  }
  try {
    const version = await run('terraform', ['version', '-json'], { cwd: REPO_ROOT, env: process.env, timeoutMs: 30_000 });
    if (!check('terraform binary', version.code === 0 ? [] : [version.stderr.trim() || 'terraform is not on PATH (install terraform >= 1.10)'])) return;
    info(`terraform ${(JSON.parse(version.stdout) as { terraform_version: string }).terraform_version}`);

    const workDir = join(workRoot, 'terraform');
    cpSync(SOURCE_DIR, workDir, {
      recursive: true,
      filter: (src) => !/^(\.terraform|terraform\.tfstate.*|.*\.tfvars(\.json)?|crash\.log)$/.test(basename(src)),
    });
    const mirror = findProviderMirror();
    if (mirror && !existsSync(join(mirror.root, MIRROR_MARKER))) {
      check('provider mirror', [`${mirror.root} (${mirror.source}) holds no ${MIRROR_MARKER}`]);
      return;
    }
    info(mirror ? `provider mirror ${mirror.root} (${mirror.source})` : 'no provider mirror: providers come from the registry');
    const env = { ...terraformEnv(workRoot, mirror), TF_DATA_DIR: join(workRoot, 'tf-data') };
    const tf = (args: string[], timeoutMs = 120_000) => run('terraform', args, { cwd: workDir, env, timeoutMs });

    const fmt = await run('terraform', ['fmt', '-check', '-recursive', '-diff', '-no-color'], { cwd: SOURCE_DIR, env, timeoutMs: 60_000 });
    check('terraform fmt -check -recursive', fmt.code === 0 ? [] : [indent(fmt.stdout + fmt.stderr, 40)]);

    const conventions = await checkConventions(SOURCE_DIR);
    check(
      'conventions (tflint terraform ruleset): typed and described variables, described outputs, snake_case names',
      conventions.map((f) => `${f.file}: ${f.block} ${f.problem}`),
    );

    const init = await tf(['init', '-backend=false', '-lockfile=readonly', '-input=false', '-no-color']);
    if (!check('terraform init (against the committed .terraform.lock.hcl)', init.code === 0 ? [] : [indent(init.stderr || init.stdout)])) return;
    const validate = await tf(['validate', '-no-color']);
    if (!check('terraform validate', validate.code === 0 ? [] : [indent(validate.stderr || validate.stdout)])) return;

    let emulator: RunningEmulator;
    try {
      emulator = await startEmulator(REPO_ROOT, await freePort());
      emulators.push(emulator);
    } catch (err) {
      check('AWS emulator (moto)', [(err as Error).message]);
      return;
    }
    check('AWS emulator (moto)', [], emulator.endpoint);

    const zip = await lambdaZip(workRoot);
    if (!zip) return;
    const certificate = await emulatorCertificate(emulator.endpoint);
    await terraformTest(workDir, env, emulator.endpoint, { local_endpoint: emulator.endpoint, certificate_arn: certificate, lambda_zip_path: zip });
  } finally {
    cleanUp();
    await Promise.all(emulators.map((e) => e.stop()));
    if (process.env.TF_CHECK_KEEP_TMP === '1') info(`kept ${workRoot}`);
    else rmSync(workRoot, { recursive: true, force: true });
  }
}

export async function runTerraformCheck(): Promise<number> {
  try {
    await main();
  } catch (err) {
    check('terraform-check', [(err as Error).stack ?? String(err)]);
  }
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  const ok = counts.fail === 0;
  console.log(`${ok ? 'PASS' : 'FAIL'}  terraform-check in ${seconds} s`);
  console.log(`terraform-check: ${counts.pass} passed, ${counts.fail} failed`);
  return ok ? 0 : 1;
}
