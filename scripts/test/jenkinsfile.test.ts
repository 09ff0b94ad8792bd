import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The Jenkinsfile's shape: thin stages, each running one script of scripts/pipeline/ (the scripts
 * `npm run test:deploy` rehearses), and the controls of a deploy: who may push and apply, the
 * approval, the plan check's parameter, one region. The Groovy itself is linted by npm test
 * (npm-groovy-lint, .groovylintrc.json).
 */
const ROOT = join(__dirname, '../..');
const jenkinsfile = readFileSync(join(ROOT, 'Jenkinsfile'), 'utf8')
  .split('\n')
  .filter((line) => !line.trim().startsWith('//'))
  .join('\n');
const stages = [...jenkinsfile.matchAll(/^\s*stage\('([^']+)'\)/gm)].map((m) => m[1] ?? '');
/** The body of a stage, up to the next stage. */
const stage = (name: string) => {
  const start = jenkinsfile.indexOf(`stage('${name}')`);
  const next = jenkinsfile.indexOf("stage('", start + 1);
  return start === -1 ? '' : jenkinsfile.slice(start, next === -1 ? jenkinsfile.indexOf('  post {') : next);
};
const DEPLOY_ONLY = ['Push', 'Approve', 'Apply', 'Rollout', 'Smoke test'];

describe('Jenkinsfile', () => {
  it('has the pipeline stages in order', () => {
    expect(stages).toEqual(['Checkout', 'Test', 'Init', 'Bootstrap', 'Build', 'Push', 'Plan', 'Approve', 'Apply', 'Rollout', 'Smoke test']);
  });

  it('is thin: every stage but Checkout and Approve runs exactly one script of scripts/pipeline/, and each exists with set -euo pipefail', () => {
    expect(jenkinsfile).not.toMatch(/sh\s+'''|sh\s+"""/);
    for (const name of stages.filter((s) => s !== 'Checkout' && s !== 'Approve')) {
      const calls = [...stage(name).matchAll(/\bsh\s+'([^']+)'/g)].map((m) => m[1] ?? '');
      expect({ name, calls }).toEqual({ name, calls: [expect.stringMatching(/^scripts\/pipeline\/[a-z-]+\.sh$/)] });
      const script = join(ROOT, calls[0] ?? '');
      expect(existsSync(script)).toBe(true);
      const text = readFileSync(script, 'utf8');
      expect(text).toMatch(/^source "\$\(dirname "\$0"\)\/lib\.sh"$/m);
    }
    expect(readFileSync(join(ROOT, 'scripts/pipeline/lib.sh'), 'utf8')).toMatch(/^set -euo pipefail$/m);
  });

  it('locks the providers for every platform in the Init stage (init.sh runs providers-lock.sh, which runs terraform providers lock -platform=...)', () => {
    expect(stage('Init')).toMatch(/sh 'scripts\/pipeline\/init\.sh'/);
    expect(readFileSync(join(ROOT, 'scripts/pipeline/init.sh'), 'utf8')).toMatch(/^bash "\$\(dirname "\$0"\)\/providers-lock\.sh"$/m);
    const lock = readFileSync(join(ROOT, 'scripts/pipeline/providers-lock.sh'), 'utf8');
    expect(lock).toMatch(/^tf providers lock "\$\{lock_args\[@\]\}"$/m);
    expect(lock).toMatch(/PROVIDERS_LOCK_PLATFORMS:-linux_amd64 linux_arm64 darwin_amd64 darwin_arm64/);
  });

  it('pushes, approves, applies, rolls out and smoke-tests only in a deploy build: main, not a PR, DEPLOY ticked', () => {
    for (const name of DEPLOY_ONLY) expect(stage(name)).toMatch(/when \{ expression \{ deployBuild \} \}/);
    expect(jenkinsfile).toMatch(/deployBuild = env\.BRANCH_NAME == 'main' && env\.CHANGE_ID == null && params\.DEPLOY/);
    // Other builds run under the read-only identity, and the scripts refuse to push or apply there.
    expect(jenkinsfile).toMatch(/env\.PIPELINE_MODE = deployBuild \? 'deploy' : 'read-only'/);
    expect(jenkinsfile).toMatch(/env\.AWS_PROFILE = deployBuild \? params\.DEPLOY_PROFILE : params\.READ_ONLY_PROFILE/);
    for (const script of ['push', 'apply', 'rollout']) {
      expect(readFileSync(join(ROOT, `scripts/pipeline/${script}.sh`), 'utf8')).toMatch(/^require_deploy /m);
    }
  });

  it('asks a person before the apply, and passes the stateful-change approval to the plan check', () => {
    expect(stage('Approve')).toMatch(/\binput message:[^]*submitter: params\.APPROVERS/);
    expect(stages.indexOf('Approve')).toBe(stages.indexOf('Apply') - 1);
    expect(jenkinsfile).toMatch(/booleanParam\(name: 'ALLOW_STATEFUL_CHANGES', defaultValue: false/);
    expect(jenkinsfile).toMatch(/ALLOW_STATEFUL_CHANGES = "\$\{params\.ALLOW_STATEFUL_CHANGES\}"/);
  });

  it('takes the region from one parameter, and the architecture from another', () => {
    expect(jenkinsfile.match(/name: 'AWS_REGION'/g)).toHaveLength(1);
    expect(jenkinsfile.match(/AWS_REGION = /g)).toEqual(['AWS_REGION = ']);
    expect(jenkinsfile).toMatch(/AWS_REGION = "\$\{params\.AWS_REGION\}"/);
    // The scripts derive the provider's and the backend's region from it, and refuse a tfvars that sets one.
    const lib = readFileSync(join(ROOT, 'scripts/pipeline/lib.sh'), 'utf8');
    expect(lib).toMatch(/export AWS_REGION AWS_DEFAULT_REGION=\$AWS_REGION TF_VAR_region=\$AWS_REGION/);
    expect(lib).toMatch(/sets region: remove it/);
    expect(readFileSync(join(ROOT, 'scripts/pipeline/init.sh'), 'utf8')).toMatch(/-backend-config="region=\$AWS_REGION"/);
    expect(jenkinsfile).not.toMatch(/AWS_DEFAULT_REGION|TF_VAR_region|-var region/);
    expect(jenkinsfile).toMatch(/ARCHITECTURE = "\$\{params\.ARCHITECTURE\}"/);
  });

  it('publishes JUnit reports and the artifacts, and cleans up through a script', () => {
    expect(jenkinsfile).toMatch(/junit testResults: 'test-artifacts\/junit\/\*\.xml'/);
    expect(jenkinsfile).toMatch(/archiveArtifacts artifacts: 'test-artifacts\/\*\*'/);
    expect(readFileSync(join(ROOT, 'scripts/pipeline/test.sh'), 'utf8')).toMatch(/JEST_JUNIT_OUTPUT_DIR=/);
  });

  it('has timeouts, no concurrent builds, and credentials only through Jenkins credentials or the agent role', () => {
    expect(jenkinsfile).toMatch(/timeout\(time: \d+, unit: 'MINUTES'\)/);
    expect(jenkinsfile).toMatch(/disableConcurrentBuilds\(\)/);
    expect(jenkinsfile).not.toMatch(/AWS_SECRET_ACCESS_KEY|AKIA[0-9A-Z]{16}|aws_access_key_id/i);
    expect(jenkinsfile).toMatch(/credentials\(/);
  });
});
