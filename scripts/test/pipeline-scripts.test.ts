import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The pipeline's stage scripts refuse what a build may not do, before touching anything: a
 * read-only build (branches, PRs) never pushes, applies or rolls out; the region has one source.
 * (`npm run test:deploy` runs the scripts' happy path as a deploy build.)
 */
const ROOT = join(__dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'pipeline-scripts-'));
const stage = (name: string, env: Record<string, string>) =>
  spawnSync('bash', [join(ROOT, 'scripts/pipeline', `${name}.sh`)], {
    cwd: ROOT,
    encoding: 'utf8',
    // No AWS or Terraform settings of the caller; a terraform that must never be reached.
    env: { PATH: `${join(work, 'bin')}:${process.env.PATH ?? ''}`, HOME: work, ARTIFACTS_DIR: join(work, 'artifacts'), ...env },
  });

beforeAll(() => {
  // Any call of terraform, aws or an image engine fails loudly: the refusals come first.
  const bin = join(work, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  for (const tool of ['terraform', 'aws', 'docker', 'podman']) writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} was called: $*" >&2\nexit 99\n`, { mode: 0o755 });
});

describe('pipeline stage scripts', () => {
  it.each(['push', 'apply', 'rollout'])('%s refuses to run in a read-only build (the default) and calls nothing', (name) => {
    const modes: Record<string, string>[] = [{}, { PIPELINE_MODE: 'read-only' }];
    for (const mode of modes) {
      const res = stage(name, { AWS_REGION: 'eu-west-1', ...mode });
      expect(res.status).toBe(1);
      expect(res.stderr).toMatch(/runs only in a deploy build \(PIPELINE_MODE=deploy, main\); this build is read-only/);
      expect(res.stderr).not.toMatch(/was called/);
    }
  });

  it('every stage needs AWS_REGION, and refuses an unknown mode or architecture', () => {
    expect(stage('plan', {}).stderr).toMatch(/AWS_REGION must be set/);
    expect(stage('plan', { AWS_REGION: 'eu-west-1', PIPELINE_MODE: 'prod' }).stderr).toMatch(/PIPELINE_MODE must be deploy or read-only/);
    expect(stage('build', { AWS_REGION: 'eu-west-1', ARCHITECTURE: 'amd64' }).stderr).toMatch(/ARCHITECTURE must be x86_64 or arm64/);
  });

  it('refuses a tfvars or backend file that sets a region: AWS_REGION is the one source', () => {
    const tfvars = join(work, 'env.tfvars');
    writeFileSync(tfvars, 'environment = "prod"\n  region = "us-west-2"\n');
    const plan = stage('plan', { AWS_REGION: 'eu-west-1', TF_VARS_FILE: tfvars });
    expect(plan.status).toBe(1);
    expect(plan.stderr).toMatch(/sets region: remove it, the region comes from AWS_REGION only/);
    const backend = join(work, 'backend.hcl');
    writeFileSync(backend, 'bucket = "state"\nkey = "k"\nregion = "us-west-2"\n');
    const init = stage('init', { AWS_REGION: 'eu-west-1', TF_BACKEND_CONFIG: backend });
    expect(init.status).toBe(1);
    expect(init.stderr).toMatch(/sets region: remove it/);
    expect(`${plan.stderr}${init.stderr}`).not.toMatch(/was called/);
  });

  it('init locks the providers for every platform operators use (terraform providers lock -platform=...), and warns when the committed file lacked hashes', () => {
    // A terraform that records its calls and "adds" a hash to the lock file it is pointed at.
    const bin = join(work, 'recording-bin');
    mkdirSync(bin, { recursive: true });
    const calls = join(work, 'terraform-calls.log');
    writeFileSync(
      join(bin, 'terraform'),
      `#!/bin/sh\necho "$*" >> "${calls}"\ncase "$*" in *"providers lock"*) echo '  # added' >> "\${TF_DIR}/.terraform.lock.hcl" ;; esac\nexit 0\n`,
      { mode: 0o755 },
    );
    const tfDir = join(work, 'tf');
    mkdirSync(tfDir, { recursive: true });
    writeFileSync(join(tfDir, '.terraform.lock.hcl'), 'provider "registry.terraform.io/hashicorp/aws" {}\n');
    const backend = join(work, 'backend-ok.hcl');
    writeFileSync(backend, 'bucket = "state"\nkey = "k"\n');
    const res = spawnSync('bash', [join(ROOT, 'scripts/pipeline/init.sh')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: work, ARTIFACTS_DIR: join(work, 'artifacts'), AWS_REGION: 'eu-west-1', TF_BACKEND_CONFIG: backend, TF_DIR: tfDir },
    });
    expect(res.status).toBe(0);
    const lines = readFileSync(calls, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^-chdir=\S+ init /);
    expect(lines[1]).toBe(`-chdir=${tfDir} providers lock -platform=linux_amd64 -platform=linux_arm64 -platform=darwin_amd64 -platform=darwin_arm64`);
    expect(res.stdout).toMatch(/lacked the hashes above\. Commit the completed file/);
    expect(readFileSync(join(work, 'artifacts/terraform.lock.hcl'), 'utf8')).toMatch(/# added/);
  });
});
