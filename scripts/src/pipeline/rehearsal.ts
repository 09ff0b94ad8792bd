import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { freePort, type RunningEmulator, startEmulator } from '@scs/local-stack/emulator';
import { emulatorCertificate, findProviderMirror } from '@scs/terraform-harness/check';
import { withoutBucketPolicies } from '@scs/terraform-harness/smoke';

/**
 * `npm run test:deploy`: the deploy pipeline rehearsed on this machine. The stage scripts of
 * scripts/pipeline/ run in the Jenkinsfile's order, as a deploy build (PIPELINE_MODE=deploy),
 * against the AWS emulator:
 *   init (S3 state in the emulator, locked with use_lockfile; the provider lock checked against the
 *   local mirror) -> bootstrap (ECR repositories and the secrets key by a targeted apply, the
 *   signing key by keys:rotate) -> build (podman, for linux/amd64) -> push (to a local
 *   `docker-registry`) -> plan + plan check -> apply -> rollout (nothing to roll on a first apply)
 * then reads the configuration Terraform wrote to SSM, starts auth, upload and backup-sync from
 * the pushed images with it (and the gateway image in front, standing in for the load balancer),
 * runs the smoke test (scripts/src/pipeline/smoke.ts) through the gateway; then runs
 * docker-compose.yml with podman-compose from the same images (composeRun) and the smoke test
 * through its gateway, and destroys. Every
 * container, the registry, the emulator and the temporary directory go away on success, failure
 * or interruption. Exit code 0 only when every step passed.
 *
 * Needs root, podman, docker-registry, terraform >= 1.10, moto (PYTHON). Settings: TF_PROVIDER_MIRROR,
 * DEPLOY_REHEARSAL_KEEP_TMP=1 (keep the work directory), DEPLOY_REHEARSAL_DESTROY=0 (skip the
 * destroy: .ci/run, where npm test's terraform test has applied and destroyed the module just
 * before), SCS_EMULATOR_FROM=pypi (compose's default emulator image), SCS_BASE_IMAGE (see
 * build-base-image.sh).
 */
const REPO_ROOT = resolve(__dirname, '../../..');
const REGION = 'us-east-1';
const ENVIRONMENT = 'rehearsal';
const SERVICES = [
  { name: 'auth', port: 3001 },
  { name: 'upload', port: 3002 },
  { name: 'backup-sync', port: 3003 },
] as const;

const startedAt = Date.now();
const counts = { pass: 0, fail: 0 };
let last = Date.now();
function report(ok: boolean, name: string, detail?: string): boolean {
  const now = Date.now();
  counts[ok ? 'pass' : 'fail'] += 1;
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name} [${((now - last) / 1000).toFixed(1)} s]${detail ? `: ${detail}` : ''}`);
  last = now;
  return ok;
}
const info = (text: string) => console.log(`INFO  ${text}`);

const children = new Set<ChildProcess>();
const containers: string[] = [];
/** podman-compose projects of this run (removed by their label when interrupted). */
const composeProjects = new Set<string>();

/** Runs a command (own process group, output passed through), resolving with its exit code. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<number> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    children.add(child);
    const timer = setTimeout(() => {
      console.log(`INFO  ${basename(args[0] ?? cmd)} timed out after ${timeoutMs / 1000} s`);
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', () => {
      clearTimeout(timer);
      children.delete(child);
      done(127);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      done(code ?? 1);
    });
  });
}

/** A pipeline stage: `bash scripts/pipeline/<stage>.sh` with the rehearsal's environment. */
async function stage(name: string, env: NodeJS.ProcessEnv, timeoutMs = 900_000): Promise<boolean> {
  console.log(`\n----- stage ${name} (scripts/pipeline/${name}.sh)`);
  const code = await run('bash', [join(REPO_ROOT, 'scripts/pipeline', `${name}.sh`)], env, timeoutMs);
  return report(code === 0, `stage ${name}`, code === 0 ? undefined : `exit code ${code}`);
}

async function waitFor(url: string, timeoutMs: number, alive: () => boolean = () => true): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(3_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return true;
    if (!alive()) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

const podman = (args: string[], env: NodeJS.ProcessEnv) => spawnSync('podman', args, { env, encoding: 'utf8', timeout: 300_000 });
const running = (name: string, env: NodeJS.ProcessEnv) => podman(['inspect', '--format', '{{.State.Running}}', name], env).stdout.trim() === 'true';

/** The base image docker/Dockerfile builds on (scripts/bin/build-base-image.sh), and podman's containers.conf. */
function baseImage(): { image: string; containersConf: string } {
  const res = spawnSync('bash', [join(REPO_ROOT, 'scripts/bin/build-base-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_200_000 });
  const value = (name: string) => new RegExp(`^export ${name}=(.*)$`, 'm').exec(res.stdout ?? '')?.[1]?.replace(/^'|'$/g, '');
  const image = value('SCS_BASE_IMAGE');
  const containersConf = value('CONTAINERS_CONF');
  if (res.status !== 0 || !image || !containersConf) throw new Error(`scripts/bin/build-base-image.sh failed (exit ${res.status})`);
  return { image, containersConf };
}

/** podman-compose with the rehearsal's podman settings; output passed through. */
const podmanCompose = (args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) => run('podman-compose', args, env, timeoutMs);

/**
 * docker-compose.yml run with podman-compose: the images of this run tagged as compose names
 * them (scs/<image>:local), the emulator image built from docker-compose.host-python.yml (this
 * machine's Python with moto on the local base image: PyPI is not reachable here) unless
 * SCS_EMULATOR_FROM=pypi, the project on its own network (a free subnet) and gateway port. Then the
 * smoke script through the gateway, from a container on the compose network (the presigned URLs
 * name the emulator by its compose host name), and a 300 MiB object stored in the emulator (room
 * for large objects: 3 x MAX_UPLOAD_BYTES). Everything of the project is removed afterwards.
 */
async function composeRun(env: NodeJS.ProcessEnv, baseImage: string): Promise<void> {
  const project = `scs-rehearsal-${process.pid}`;
  composeProjects.add(project);
  const network = `${project}_default`;
  const subnet = freeSubnet(env);
  const gatewayPort = await freePort();
  const python = process.env.PYTHON ?? 'python3';
  const prefix = spawnSync(python, ['-c', 'import sys; print(sys.prefix if sys.prefix == sys.base_prefix else "")'], { encoding: 'utf8' }).stdout.trim();
  const fromPypi = process.env.SCS_EMULATOR_FROM === 'pypi';
  if (!fromPypi && !prefix) {
    report(false, 'compose: emulator image', `${python} is a virtual environment: set SCS_EMULATOR_FROM=pypi where PyPI is reachable`);
    return;
  }
  const files = ['-f', 'docker-compose.yml', ...(fromPypi ? [] : ['-f', 'docker-compose.host-python.yml'])];
  const composeEnv: NodeJS.ProcessEnv = {
    ...env,
    GATEWAY_PORT: String(gatewayPort),
    SCS_COMPOSE_SUBNET: subnet,
    NODE_IMAGE: baseImage,
    SCS_BASE_IMAGE: baseImage,
    SCS_HOST_PYTHON_PREFIX: prefix,
    SCS_EMULATOR_DOCKERFILE: join(REPO_ROOT, 'docker/emulator-host-python.Dockerfile'),
    SCS_ADMIN_USERNAME: '',
    SCS_ADMIN_PASSWORD: '',
  };
  const args = [...files, '-p', project];
  const inProject = () => podman(['ps', '-aq', '--filter', `label=io.podman.compose.project=${project}`], env).stdout.split('\n').filter(Boolean);
  try {
    for (const image of ['auth', 'upload', 'backup-sync', 'gateway', 'sensitive-mover']) {
      const tagged = podman(['tag', `scs/${image}:${env.IMAGE_TAG}`, `scs/${image}:local`], env);
      if (!report(tagged.status === 0, `compose: scs/${image}:local is this run's image`, tagged.status === 0 ? undefined : tagged.stderr.trim())) return;
    }
    console.log(`\n----- podman-compose ${files.join(' ')} build emulator`);
    if (!report((await podmanCompose([...args, 'build', 'emulator'], composeEnv, 1_200_000)) === 0, 'compose: emulator image', fromPypi ? 'docker/emulator.Dockerfile (PyPI)' : `docker/emulator-host-python.Dockerfile on ${prefix}`)) return;
    // podman-compose 1.0 does not apply the network's ipam subnet: the project's network is made
    // here with it, so that TRUSTED_PROXIES (the subnet) holds the gateway's address.
    const made = podman(['network', 'create', '--subnet', subnet, '--label', `io.podman.compose.project=${project}`, network], env);
    if (!report(made.status === 0, 'compose: project network', made.status === 0 ? `${network} ${subnet}` : made.stderr.trim())) return;
    console.log(`\n----- podman-compose ${files.join(' ')} up -d --no-build`);
    if (!report((await podmanCompose([...args, 'up', '-d', '--no-build'], composeEnv, 300_000)) === 0, 'compose: up')) return;
    const gatewayUp = await waitFor(`http://127.0.0.1:${gatewayPort}/health`, 120_000);
    if (!report(gatewayUp, 'compose: gateway answers on its published port', `127.0.0.1:${gatewayPort}`)) return;
    // The pipeline's smoke script (built in this checkout; it needs nothing but Node) runs on the
    // compose network, in the base image with the checkout's scripts/dist mounted read-only: the
    // presigned URLs name the emulator by its compose host name.
    const smoke = podman(
      [
        'run', '--rm', '--network', network, '--read-only', '--cap-drop', 'ALL', '--init', '-e', 'SMOKE_WAIT_SECONDS=120',
        '-v', `${join(REPO_ROOT, 'scripts/dist')}:/smoke:ro`, baseImage, 'node', '/smoke/cli/smoke.js', 'http://gateway:8080',
      ],
      env,
    );
    process.stdout.write(smoke.stdout);
    if (!report(smoke.status === 0, 'compose: smoke script through the gateway (http://gateway:8080 on the compose network)', smoke.status === 0 ? undefined : smoke.stderr.trim().slice(-800))) return;
    const room = podman(
      ['exec', `${project}_emulator_1`, 'python', '-c', [
        'import boto3, io, os',
        's3 = boto3.client("s3", endpoint_url="http://127.0.0.1:4566", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")',
        's3.create_bucket(Bucket="scs-room-check")',
        's3.upload_fileobj(io.BytesIO(os.urandom(3 * 104857600)), "scs-room-check", "large")',
        'print(s3.head_object(Bucket="scs-room-check", Key="large")["ContentLength"])',
        's3.delete_object(Bucket="scs-room-check", Key="large")',
        's3.delete_bucket(Bucket="scs-room-check")',
      ].join('\n')],
      env,
    );
    report(room.status === 0 && room.stdout.trim() === String(3 * 104857600), 'compose: the emulator stores a 300 MiB object (3 x MAX_UPLOAD_BYTES)', room.status === 0 ? `${room.stdout.trim()} bytes` : room.stderr.trim().slice(-500));
  } finally {
    // podman-compose down stops in order; removing by the project's label also takes what a
    // failed `up` left behind. A container caught restarting needs a second attempt.
    for (let attempt = 0; attempt < 3 && inProject().length > 0; attempt += 1) podman(['rm', '-f', '-t', '2', ...inProject()], env);
    podman(['network', 'rm', network], env);
    for (const image of ['auth', 'upload', 'backup-sync', 'gateway', 'sensitive-mover']) podman(['untag', `scs/${image}:local`, `scs/${image}:local`], env);
    composeProjects.delete(project);
    info(`removed compose project ${project}`);
  }
}

/** A /24 in 172.30.0.0/16 that no podman network uses (another run's compose project may hold one). */
function freeSubnet(env: NodeJS.ProcessEnv): string {
  const used = podman(['network', 'ls', '--format', '{{range .Subnets}}{{.Subnet}} {{end}}'], env).stdout;
  for (let tries = 0; tries < 200; tries += 1) {
    const candidate = `172.30.${100 + Math.floor(Math.random() * 150)}.0/24`;
    if (!used.includes(candidate)) return candidate;
  }
  throw new Error('no free 172.30.x.0/24 subnet for the compose project');
}

async function rehearse(work: string): Promise<void> {
  const emulators: RunningEmulator[] = [];
  let registry: ChildProcess | undefined;
  let destroyEnv: NodeJS.ProcessEnv | undefined;
  let stageEnv: NodeJS.ProcessEnv = {};
  const tfDir = join(work, 'terraform');
  try {
    // ---- tools and the local services the pipeline's AWS stands for
    const mirror = findProviderMirror();
    info(mirror ? `provider mirror ${mirror.root} (${mirror.source})` : 'no provider mirror: providers come from the registry');
    const base = baseImage();
    report(true, 'base image', `${base.image} (CONTAINERS_CONF=${base.containersConf})`);

    const emulator = await startEmulator(REPO_ROOT, await freePort());
    emulators.push(emulator);
    report(true, 'AWS emulator (moto)', emulator.endpoint);

    const registryPort = await freePort();
    const registryConfig = join(work, 'registry.yml');
    mkdirSync(join(work, 'registry'));
    writeFileSync(
      registryConfig,
      ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(work, 'registry')}`, 'http:', `  addr: 127.0.0.1:${registryPort}`, ''].join('\n'),
    );
    registry = spawn('docker-registry', ['serve', registryConfig], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
    children.add(registry);
    const registryUp = await waitFor(`http://127.0.0.1:${registryPort}/v2/`, 20_000, () => registry?.exitCode === null);
    if (!report(registryUp, 'local image registry (docker-registry)', `127.0.0.1:${registryPort}`)) return;

    // ---- the environment's settings, as Jenkins credentials would hand them over
    const creds = { accessKeyId: 'test', secretAccessKey: 'test' };
    const s3 = new S3Client({ endpoint: emulator.endpoint, region: REGION, forcePathStyle: true, credentials: creds });
    const stateBucket = 'scs-rehearsal-terraform-state';
    await s3.send(new CreateBucketCommand({ Bucket: stateBucket }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: stateBucket, VersioningConfiguration: { Status: 'Enabled' } }));
    s3.destroy();
    writeFileSync(join(work, 'backend.hcl'), `bucket = "${stateBucket}"\nkey    = "secure-cloud-storage/${ENVIRONMENT}.tfstate"\n`);
    const certificate = await emulatorCertificate(emulator.endpoint);
    writeFileSync(
      join(work, 'rehearsal.tfvars'),
      [
        `environment      = "${ENVIRONMENT}"`,
        `local_endpoint   = "${emulator.endpoint}"`,
        `certificate_arn  = "${certificate}"`,
        'site_origin      = "https://files.example.test"',
        // A throwaway environment: everything may be destroyed at the end.
        'kms_deletion_window_in_days  = 7',
        'dynamodb_deletion_protection = false',
        'force_destroy_buckets        = true',
        'alb_deletion_protection      = false',
        'ecr_force_delete             = true',
        '',
      ].join('\n'),
    );
    cpSync(join(REPO_ROOT, 'terraform'), tfDir, {
      recursive: true,
      filter: (src) => !/^(\.terraform|terraform\.tfstate.*|.*\.tfvars(\.json)?|tfplan|.*\.tfplan|backend\.hcl|crash\.log)$/.test(basename(src)),
    });
    const cliConfig = join(work, 'terraform.rc');
    writeFileSync(
      cliConfig,
      mirror
        ? `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(mirror.root)}\n    include = ["registry.terraform.io/hashicorp/*"]\n  }\n  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n`
        : '\n',
    );

    const clean: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(TF_|AWS_|PIPELINE_MODE$|IMAGE|ARCHITECTURE$|SMOKE_)/.test(k)) clean[k] = v;
    const imageTag = `${(spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout || 'local').trim().slice(0, 12)}-${Date.now().toString(36)}`;
    stageEnv = {
      ...clean,
      // The pipeline's settings (Jenkinsfile parameters and credentials).
      AWS_REGION: REGION,
      PIPELINE_MODE: 'deploy',
      ARCHITECTURE: 'x86_64',
      IMAGE_TAG: imageTag,
      TF_BACKEND_CONFIG: join(work, 'backend.hcl'),
      TF_VARS_FILE: join(work, 'rehearsal.tfvars'),
      ALLOW_STATEFUL_CHANGES: 'false',
      // Where the rehearsal differs from the agent: the emulator instead of AWS, podman and a
      // local registry instead of Docker and ECR, the provider mirror instead of the registry.
      AWS_ENDPOINT_URL: emulator.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(work, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      TF_BACKEND_ENDPOINT: emulator.endpoint,
      TF_CLI_CONFIG_FILE: cliConfig,
      TF_DIR: tfDir,
      PROVIDERS_LOCK: mirror ? `mirror:${mirror.root}` : 'registry',
      CONTAINER_ENGINE: 'podman',
      CONTAINERS_CONF: base.containersConf,
      BUILD_ARGS: `--format docker --layers --build-arg NODE_IMAGE=${base.image}`,
      LAMBDA_ZIP: join(work, 'lambda', 'lambda.zip'),
      ARTIFACTS_DIR: join(work, 'artifacts'),
      REGISTRY_KIND: 'registry',
      REGISTRY_HOST: `127.0.0.1:${registryPort}`,
      REGISTRY_TLS_VERIFY: 'false',
    };

    // ---- the pipeline's stages, in the Jenkinsfile's order
    if (!(await stage('init', stageEnv))) return;
    destroyEnv = stageEnv; // from here on there may be something to destroy
    if (!(await stage('bootstrap', stageEnv))) return;
    // The gateway image stands in for the load balancer here, and the sensitive-mover's runner
    // joins the compose run below: built, not pushed (AWS runs neither as an image).
    if (!(await stage('build', { ...stageEnv, IMAGES: 'auth upload backup-sync gateway sensitive-mover' }, 1_800_000))) return;
    if (!(await stage('push', stageEnv))) return;
    if (!(await stage('push', stageEnv))) return; // a re-run: every tag exists, nothing is pushed again
    if (!(await stage('plan', stageEnv))) return;
    if (!(await stage('apply', stageEnv))) return;
    if (!(await stage('rollout', stageEnv))) return;

    // ---- the configuration Terraform wrote, and the services from the pushed images
    const tfOutput = (name: string) => JSON.parse(spawnSync('terraform', [`-chdir=${tfDir}`, 'output', '-json', name], { env: stageEnv, encoding: 'utf8' }).stdout || '{}') as Record<string, string>;
    const names = tfOutput('ssm_parameter_names');
    const repositories = tfOutput('ecr_repository_urls');
    const ssm = new SSMClient({ endpoint: emulator.endpoint, region: REGION, credentials: creds });
    const parameter = await ssm.send(new GetParameterCommand({ Name: names.service_environment, WithDecryption: true })).finally(() => ssm.destroy());
    const serviceEnvironment = JSON.parse(parameter.Parameter?.Value ?? '{}') as Record<string, string>;
    if (!report(Boolean(serviceEnvironment.USERS_TABLE), 'read the services\' configuration Terraform wrote to SSM', names.service_environment)) return;

    const buckets = [serviceEnvironment.PRIMARY_BUCKET, serviceEnvironment.SENSITIVE_BUCKET, serviceEnvironment.BACKUP_BUCKET].filter((b): b is string => Boolean(b));
    // moto evaluates bucket policies without their conditions (tests/terraform/src/smoke.ts):
    // set aside while the services run, put back, and what they stored removed before the destroy.
    await withoutBucketPolicies(emulator.endpoint, REGION, buckets, async () => {
      const awsEnv = { ...serviceEnvironment, AWS_ENDPOINT_URL: emulator.endpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
      const ports: Record<string, number> = {};
      for (const svc of SERVICES) {
        ports[svc.name] = await freePort();
        const repository = repositories[svc.name] ?? '';
        const image = `127.0.0.1:${registryPort}/${repository.slice(repository.indexOf('/') + 1)}:${imageTag}`;
        const name = `scs-rehearsal-${svc.name}-${process.pid}`;
        containers.push(name);
        const envArgs = Object.entries({ ...awsEnv, PORT: String(ports[svc.name]), HOST: '127.0.0.1', LOG_LEVEL: 'warn', COOKIE_SECURE: 'false', TRUSTED_PROXIES: '127.0.0.1/32' }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
        const started = podman(['run', '-d', '--name', name, '--tls-verify=false', '--pull=always', '--network', 'host', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--init', ...envArgs, image], stageEnv);
        if (!report(started.status === 0, `start ${svc.name} from the pushed image`, started.status === 0 ? image : started.stderr.trim().slice(-500))) return;
      }
      const gatewayPort = await freePort();
      const gatewayName = `scs-rehearsal-gateway-${process.pid}`;
      containers.push(gatewayName);
      const url = (port: number | undefined) => `http://127.0.0.1:${port}`;
      const gw = podman(
        ['run', '-d', '--name', gatewayName, '--network', 'host', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--init',
         '-e', `GATEWAY_PORT=${gatewayPort}`, '-e', 'HOST=127.0.0.1', '-e', 'LOG_LEVEL=warn', '-e', `AUTH_URL=${url(ports.auth)}`, '-e', `UPLOAD_URL=${url(ports.upload)}`,
         '-e', `BACKUP_URL=${url(ports['backup-sync'])}`, `scs/gateway:${imageTag}`],
        stageEnv,
      );
      if (!report(gw.status === 0, 'start the gateway (the load balancer\'s stand-in)', gw.status === 0 ? undefined : gw.stderr.trim().slice(-500))) return;
      for (const svc of SERVICES) {
        const name = `scs-rehearsal-${svc.name}-${process.pid}`;
        const ready = await waitFor(`${url(ports[svc.name])}/ready`, 90_000, () => running(name, stageEnv));
        if (!report(ready, `${svc.name} is ready (GET /ready) with the configuration from SSM`)) {
          console.log(podman(['logs', '--tail', '20', name], stageEnv).stdout + podman(['logs', '--tail', '20', name], stageEnv).stderr);
          return;
        }
      }
      if (!report(await waitFor(`${url(gatewayPort)}/health`, 30_000, () => running(gatewayName, stageEnv)), 'gateway is up')) return;

      // ---- the smoke script, as the pipeline's smoke stage runs it (through the public URL)
      const smoke = await stage('smoke', { ...stageEnv, SMOKE_URL: url(gatewayPort), SMOKE_WAIT_SECONDS: '30' }, 300_000);
      if (!smoke) return;
      for (const name of containers.splice(0)) podman(['rm', '-f', '-t', '5', name], stageEnv);
    });
    if (counts.fail > 0) return;

    // ---- docker-compose.yml, run for real with podman-compose, from the images just built
    await composeRun(stageEnv, base.image);
  } finally {
    for (const name of containers.splice(0)) podman(['rm', '-f', '-t', '2', name], stageEnv);
    if (destroyEnv && process.env.DEPLOY_REHEARSAL_DESTROY === '0') {
      // .ci/run: npm test's Terraform check (terraform test) has just applied and destroyed the
      // whole module against the emulator; this state and this emulator are thrown away below.
      info('terraform destroy skipped (DEPLOY_REHEARSAL_DESTROY=0): the emulator and its state go with the run');
    } else if (destroyEnv) {
      console.log('\n----- terraform destroy');
      // Destroy evaluates the Lambda's zip hash: a run that stopped before the build has no zip.
      const zip = String(destroyEnv.LAMBDA_ZIP);
      if (!existsSync(zip)) {
        mkdirSync(dirname(zip), { recursive: true });
        writeFileSync(zip, '');
      }
      const varArgs = ['-var-file', String(destroyEnv.TF_VARS_FILE), '-var', `image_tag=${destroyEnv.IMAGE_TAG}`, '-var', `lambda_zip_path=${destroyEnv.LAMBDA_ZIP}`];
      const code = await run('terraform', [`-chdir=${tfDir}`, 'destroy', '-auto-approve', '-input=false', '-no-color', ...varArgs], { ...destroyEnv, TF_VAR_region: REGION, TF_IN_AUTOMATION: '1' }, 900_000);
      report(code === 0, 'terraform destroy', code === 0 ? undefined : `exit code ${code}`);
    }
    if (stageEnv.IMAGE_TAG) {
      // This run's tags go; the images stay as scs/<image>:rehearsal so that the next build (and
      // npm run test:images, the same Dockerfile and arguments) reuses their layers.
      const tags = podman(['images', '--format', '{{.Repository}}:{{.Tag}}'], stageEnv).stdout.split('\n').filter((t) => t.endsWith(`:${stageEnv.IMAGE_TAG}`));
      for (const tag of tags.filter((t) => t.startsWith('localhost/scs/'))) podman(['tag', tag, tag.replace(/:[^:]+$/, ':rehearsal')], stageEnv);
      for (const tag of tags) podman(['untag', tag, tag], stageEnv);
    }
    if (registry?.pid && registry.exitCode === null) process.kill(-registry.pid, 'SIGTERM');
    await Promise.all(emulators.map((e) => e.stop()));
  }
}

export async function runDeployRehearsal(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'scs-deploy-rehearsal-'));
  const kill = () => {
    for (const child of children) if (child.pid && child.exitCode === null) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    for (const name of containers) spawnSync('podman', ['rm', '-f', '-t', '0', name], { stdio: 'ignore' });
    for (const project of composeProjects) {
      const ids = spawnSync('podman', ['ps', '-aq', '--filter', `label=io.podman.compose.project=${project}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) spawnSync('podman', ['rm', '-f', '-t', '0', ...ids], { stdio: 'ignore' });
      spawnSync('podman', ['network', 'rm', `${project}_default`], { stdio: 'ignore' });
    }
  };
  process.once('exit', kill);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.log(`FAIL  interrupted by ${signal}`);
      kill();
      rmSync(work, { recursive: true, force: true });
      process.exit(1);
    });
  }
  try {
    await rehearse(work);
  } catch (err) {
    report(false, 'deploy rehearsal', (err as Error).stack ?? String(err));
  } finally {
    if (process.env.DEPLOY_REHEARSAL_KEEP_TMP === '1') info(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  console.log(`${counts.fail === 0 && counts.pass > 0 ? 'PASS' : 'FAIL'}  deploy rehearsal in ${seconds} s`);
  console.log(`deploy-rehearsal: ${counts.pass} passed, ${counts.fail} failed`);
  return counts.fail === 0 && counts.pass > 0 ? 0 : 1;
}
