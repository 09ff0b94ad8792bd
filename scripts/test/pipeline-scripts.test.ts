import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
});
