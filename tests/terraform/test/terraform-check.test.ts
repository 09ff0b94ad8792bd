import { join } from 'node:path';
import { DEFAULT_UPSTREAM, PATH_RULES, PRIVATE_PATHS } from '@scs/local-stack/gateway/app';
import { checkConventions, checkConventionsOf } from '../src/conventions';
import { analyseReplan, type ResourceChange } from '../src/drift';
import { appliedListenerRules, compareWithGateway } from '../src/listener-rules';

describe('conventions (what tflint would check)', () => {
  it('the root module and its modules follow them', async () => {
    expect(await checkConventions(join(__dirname, '../../../terraform'))).toEqual([]);
  });

  it('finds untyped or undescribed variables, undescribed outputs and names that are not snake_case', async () => {
    const text = `
      variable "untyped" { description = "x" }
      variable "undescribed" { type = string }
      variable "BadName" {
        type        = string
        description = "x"
      }
      output "out" { value = 1 }
      resource "aws_s3_bucket" "myBucket" {}
      data "aws_region" "this" {}
      locals { camelCase = 1 }
      module "Thing" { source = "./x" }
    `;
    const findings = (await checkConventionsOf('x.tf', text)).map((f) => `${f.block} ${f.problem}`);
    expect(findings.sort()).toEqual(
      [
        'variable "untyped" has no type',
        'variable "undescribed" has no description',
        'variable "BadName" name is not snake_case',
        'output "out" has no description',
        'resource "aws_s3_bucket" "myBucket" name is not snake_case',
        'local.camelCase name is not snake_case',
        'module "Thing" name is not snake_case',
      ].sort(),
    );
  });
});

const update = (type: string, before: Record<string, unknown>, after: Record<string, unknown>, afterUnknown: Record<string, unknown> = {}): ResourceChange => ({
  address: `${type}.this`,
  type,
  mode: 'managed',
  change: { actions: ['update'], before, after, after_unknown: afterUnknown },
});

describe('the re-plan after apply', () => {
  it('accepts the known emulator differences and nothing else', () => {
    const report = analyseReplan([
      update('aws_s3_bucket_notification', { eventbridge: false, bucket: 'b' }, { eventbridge: true, bucket: 'b' }),
      update('aws_s3_bucket_notification', { eventbridge: false, bucket: 'b' }, { eventbridge: true, bucket: 'c' }),
      update('aws_lb', { idle_timeout: 30 }, { idle_timeout: 60 }),
      { ...update('aws_sqs_queue', {}, {}), change: { actions: ['delete', 'create'], before: {}, after: {} } },
    ]);
    expect(report.explained.map((e) => e.attributes)).toEqual([['eventbridge']]);
    expect(report.unexplained).toEqual([
      { address: 'aws_s3_bucket_notification.this', actions: ['update'], attributes: ['bucket'] },
      { address: 'aws_lb.this', actions: ['update'], attributes: ['idle_timeout'] },
      { address: 'aws_sqs_queue.this', actions: ['delete', 'create'], attributes: [] },
    ]);
  });

  it("ignores only the launch template's own tag specification, not a change to the instances' tags", () => {
    const spec = (type: string, name: string) => ({ resource_type: type, tags: { Name: name } });
    const before = { tag_specifications: [spec('instance', 'a'), spec('launch-template', 'lt')], latest_version: 1 };
    const quirk = analyseReplan([update('aws_launch_template', before, { tag_specifications: [spec('instance', 'a')] }, { latest_version: true })]);
    expect(quirk.unexplained).toEqual([]);
    const real = analyseReplan([update('aws_launch_template', before, { tag_specifications: [spec('instance', 'b')] }, { latest_version: true })]);
    expect(real.unexplained[0]?.attributes).toEqual(['tag_specifications']);
  });

  it('passes when nothing changes', () => {
    const noop: ResourceChange = { address: 'a.b', type: 'a', mode: 'managed', change: { actions: ['no-op'], before: {}, after: {} } };
    expect(analyseReplan([noop])).toEqual({ explained: [], unexplained: [] });
  });
});

describe("the ALB listener and the gateway's PATH_RULES", () => {
  const group = (service: string) => ({ address: `aws_lb_target_group.this["${service}"]`, type: 'aws_lb_target_group', values: { arn: `tg-${service}`, name: `scs-${service}` } });
  const rule = (priority: number, patterns: string[], action: Record<string, unknown>) => ({
    address: `aws_lb_listener_rule.r${priority}`,
    type: 'aws_lb_listener_rule',
    values: { listener_arn: 'https', priority, condition: [{ path_pattern: [{ values: patterns }] }], action: [action] },
  });
  const forward = (service: string) => ({ type: 'forward', target_group_arn: `tg-${service}` });
  const state = (rules: ReturnType<typeof rule>[], defaultService = DEFAULT_UPSTREAM) => ({
    resources: [
      group('auth'),
      group('upload'),
      group('backup-sync'),
      { address: 'aws_lb_listener.https', type: 'aws_lb_listener', values: { arn: 'https', protocol: 'HTTPS', default_action: [forward(defaultService)] } },
      ...rules,
    ],
  });
  const metrics = rule(1, [...PRIVATE_PATHS], { type: 'fixed-response', fixed_response: [{ status_code: '404' }] });
  const gatewayRules = PATH_RULES.map((r, i) => rule(10 * (i + 1), [r.pattern], forward(r.upstream)));

  it('agree when the listener forwards as the gateway does and answers /metrics 404 first', () => {
    expect(compareWithGateway(appliedListenerRules(state([metrics, ...gatewayRules]), 'scs'))).toEqual([]);
  });

  it('disagree on another order, another service, another default or a forwarded /metrics', () => {
    const [first, second, ...rest] = gatewayRules;
    const swapped = [metrics, { ...second!, values: { ...second!.values, priority: 5 } }, first!, ...rest];
    expect(compareWithGateway(appliedListenerRules(state(swapped), 'scs'))).toHaveLength(1);
    expect(compareWithGateway(appliedListenerRules(state([metrics, ...gatewayRules], 'auth'), 'scs'))).toHaveLength(1);
    expect(compareWithGateway(appliedListenerRules(state(gatewayRules), 'scs'))).toEqual([
      `the load balancer answers 404 for [], the gateway for its PRIVATE_PATHS [${PRIVATE_PATHS.join(', ')}]`,
    ]);
  });
});
