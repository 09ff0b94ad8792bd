import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlanFormatError, planVerdict, statefulChanges } from '../src/pipeline/plan-check';
import { groupsToRoll, type InstanceRefresh, refreshVerdict } from '../src/pipeline/refresh';

/** The deploy pipeline's plan check and rollout verdict, on fixture plans (`terraform show -json`). */
const FIXTURES = join(__dirname, 'fixtures/plans');
const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Record<string, never>;

describe('plan check: stateful destroys and replaces', () => {
  it('passes a plan that only rolls a new image tag (updates, no-ops, data reads)', () => {
    expect(statefulChanges(fixture('image-tag-only.json'))).toEqual([]);
    expect(planVerdict([], false).code).toBe(0);
  });

  it('passes a new environment (creates only) and a plan without changes', () => {
    expect(statefulChanges(fixture('new-environment.json'))).toEqual([]);
    expect(statefulChanges(fixture('no-changes.json'))).toEqual([]);
  });

  it('fails on a replaced DynamoDB table, with the reason Terraform gives', () => {
    const findings = statefulChanges(fixture('replace-table.json'));
    expect(findings).toEqual([{ address: 'aws_dynamodb_table.this["users"]', type: 'aws_dynamodb_table', kind: 'replace', reason: 'replace_because_cannot_update' }]);
    const verdict = planVerdict(findings, false);
    expect(verdict.code).toBe(1);
    expect(verdict.lines.join('\n')).toMatch(/REPLACE aws_dynamodb_table.this\["users"\] \(replace_because_cannot_update\)/);
    expect(verdict.lines.join('\n')).toMatch(/ALLOW_STATEFUL_CHANGES/);
  });

  it('finds buckets, KMS keys (create-before-destroy too) and SSM parameters holding keys, not other resources', () => {
    expect(statefulChanges(fixture('stateful-everything.json')).map((f) => `${f.kind} ${f.address}`)).toEqual([
      'delete module.primary.aws_s3_bucket.this',
      'replace aws_kms_key.this["secrets"]',
      'delete aws_ssm_parameter.jwt_signing_key',
    ]);
  });

  it('lets an approved plan through, still listing what it destroys', () => {
    const verdict = planVerdict(statefulChanges(fixture('replace-table.json')), true);
    expect(verdict.code).toBe(0);
    expect(verdict.lines.join('\n')).toMatch(/APPROVED.*\n.*REPLACE aws_dynamodb_table/);
  });

  it('refuses what is not a JSON plan', () => {
    expect(() => statefulChanges({ resource_changes: [] })).toThrow(PlanFormatError);
    expect(() => statefulChanges({ format_version: '1.2', resource_changes: {} })).toThrow(PlanFormatError);
    expect(() => statefulChanges({ format_version: '1.2', resource_changes: [{ type: 'aws_s3_bucket' }] })).toThrow(PlanFormatError);
  });

  describe('the command (scripts/dist/cli/plan-check.js, as plan.sh runs it)', () => {
    const cli = join(__dirname, '../dist/cli/plan-check.js');
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });

    it('exits 1 on a stateful replace, 0 with ALLOW_STATEFUL_CHANGES=true, 0 on a harmless plan', () => {
      expect(run([join(FIXTURES, 'replace-table.json')]).status).toBe(1);
      expect(run([join(FIXTURES, 'replace-table.json')], { ALLOW_STATEFUL_CHANGES: 'true' }).status).toBe(0);
      expect(run([join(FIXTURES, 'replace-table.json')], { ALLOW_STATEFUL_CHANGES: 'yes' }).status).toBe(1);
      expect(run([join(FIXTURES, 'image-tag-only.json')]).status).toBe(0);
    });

    it('exits 2 on a missing, unreadable or non-plan file', () => {
      const dir = mkdtempSync(join(tmpdir(), 'plan-check-'));
      writeFileSync(join(dir, 'text.json'), 'Terraform will perform the following actions');
      writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 4, resources: [] }));
      expect(run([]).status).toBe(2);
      expect(run([join(dir, 'missing.json')]).status).toBe(2);
      expect(run([join(dir, 'text.json')]).status).toBe(2);
      expect(run([join(dir, 'state.json')]).status).toBe(2);
    });
  });
});

describe('rollout: instance refresh verdict', () => {
  const since = Date.parse('2026-12-07T10:00:00Z');
  const refresh = (Status: string, StartTime = '2026-12-07T10:01:00Z', extra: Partial<InstanceRefresh> = {}): InstanceRefresh => ({
    InstanceRefreshId: `id-${Status}-${StartTime}`,
    Status,
    StartTime,
    ...extra,
  });

  it('waits while the refresh is pending, in progress or baking, and is done when it succeeded', () => {
    for (const status of ['Pending', 'InProgress', 'Baking', 'RollbackInProgress']) expect(refreshVerdict([refresh(status)], since).state).toBe('waiting');
    expect(refreshVerdict([refresh('Successful')], since).state).toBe('done');
  });

  it('fails on a rollback (auto rollback on the unhealthy-host alarms), a failure or a cancel', () => {
    const rolledBack = refreshVerdict([refresh('RollbackSuccessful', undefined, { StatusReason: 'alarm scs-prod-auth-unhealthy-hosts in ALARM' })], since);
    expect(rolledBack).toMatchObject({ state: 'failed' });
    expect((rolledBack as { message: string }).message).toMatch(/rolled back.*unhealthy-hosts/);
    for (const status of ['Failed', 'Cancelled', 'RollbackFailed', 'SomethingNew']) expect(refreshVerdict([refresh(status)], since).state).toBe('failed');
  });

  it('fails when no refresh started after the apply: an older success does not count', () => {
    const verdict = refreshVerdict([refresh('Successful', '2026-12-07T09:00:00Z')], since);
    expect(verdict).toMatchObject({ state: 'failed', message: expect.stringMatching(/no instance refresh found/) });
    expect(refreshVerdict([], since).state).toBe('failed');
  });

  it('reads the newest refresh since the apply', () => {
    const verdict = refreshVerdict([refresh('Cancelled', '2026-12-07T10:01:00Z'), refresh('InProgress', '2026-12-07T10:02:00Z')], since);
    expect(verdict.state).toBe('waiting');
  });

  it('expects a refresh only for existing groups whose launch template version changes', () => {
    expect(groupsToRoll(fixture('image-tag-only.json'))).toEqual(['scs-prod-auth']);
    expect(groupsToRoll(fixture('new-environment.json'))).toEqual([]);
  });
});
