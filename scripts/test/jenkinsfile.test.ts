import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The Jenkinsfile's shape: its stages in order, and the rules every build must keep. */
const jenkinsfile = readFileSync(join(__dirname, '../../Jenkinsfile'), 'utf8')
  .split('\n')
  .filter((line) => !line.trim().startsWith('//'))
  .join('\n');
const stages = [...jenkinsfile.matchAll(/^\s*stage\('([^']+)'\)/gm)].map((m) => m[1]);
/** The body of a stage, up to the next stage. */
const stage = (name: string) => {
  const start = jenkinsfile.indexOf(`stage('${name}')`);
  const next = jenkinsfile.indexOf("stage('", start + 1);
  return start === -1 ? '' : jenkinsfile.slice(start, next === -1 ? undefined : next);
};

describe('Jenkinsfile', () => {
  it('has the pipeline stages in order', () => {
    expect(stages).toEqual([
      'Checkout',
      'Install',
      'Test',
      'Audit',
      'Build',
      'Terraform plan',
      'Push to ECR',
      'Deploy',
      'Smoke test',
    ]);
  });

  it('runs npm ci once and npm test once, with no separate lint or type-check stage', () => {
    expect(jenkinsfile.match(/\bnpm ci\b/g)).toHaveLength(1);
    expect(jenkinsfile.match(/\bnpm test\b/g)).toHaveLength(1);
    expect(jenkinsfile).not.toMatch(/npm run lint|npx tsc|tsc -b/);
  });

  it('publishes JUnit reports that the test run writes', () => {
    expect(stage('Test')).toMatch(/JEST_JUNIT_OUTPUT_DIR/);
    expect(stage('Test')).toMatch(/--reporters=jest-junit/);
    expect(jenkinsfile).toMatch(/junit\s+testResults:\s*'test-artifacts\/junit\/\*\.xml'/);
  });

  it('audits the production dependencies', () => {
    expect(stage('Audit')).toMatch(/npm audit --omit=dev --audit-level=high/);
  });

  it('builds the images and the Lambda zip from the one Dockerfile, tagged with the commit', () => {
    expect(stage('Build')).toMatch(/docker\/build-image\.sh/);
    expect(stage('Build')).toMatch(/--target lambda-zip/);
    expect(stage('Build')).toMatch(/\$IMAGE_TAG/);
  });

  it('archives the Terraform plan', () => {
    expect(stage('Terraform plan')).toMatch(/terraform -chdir=terraform plan [^]*?-out=tfplan/);
    expect(stage('Terraform plan')).toMatch(/archiveArtifacts .*terraform-plan/);
  });

  it('deploys from main only: apply with the new tag, wait for the instance refresh, smoke test the ALB', () => {
    for (const name of ['Push to ECR', 'Deploy', 'Smoke test']) expect(stage(name)).toMatch(/branch 'main'/);
    expect(stage('Deploy')).toMatch(/terraform -chdir=terraform apply .*tfplan/);
    expect(stage('Deploy')).toMatch(/describe-instance-refreshes/);
    expect(stage('Smoke test')).toMatch(/alb_dns_name/);
  });

  it('has timeouts, no concurrent builds, and credentials only through Jenkins credentials or the agent role', () => {
    expect(jenkinsfile).toMatch(/timeout\(time: \d+, unit: 'MINUTES'\)/);
    expect(jenkinsfile).toMatch(/disableConcurrentBuilds\(\)/);
    expect(jenkinsfile).not.toMatch(/AWS_SECRET_ACCESS_KEY|AKIA[0-9A-Z]{16}|aws_access_key_id/i);
    expect(jenkinsfile).toMatch(/credentials\(/);
  });
});
