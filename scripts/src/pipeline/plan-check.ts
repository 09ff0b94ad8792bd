/**
 * The deploy pipeline's plan check (scripts/pipeline/plan.sh): reads `terraform show -json <plan>`
 * and lists every destroy or replace of a stateful resource, whose loss no re-apply brings back:
 * DynamoDB tables, S3 buckets, KMS keys, and SSM parameters that hold keys (a name with "key" in
 * it, e.g. the JWT signing key). Updates in place, creates, reads and `forget` (a `removed` block
 * that keeps the object) are not findings.
 */

/** Resource types whose destroy loses data; SSM parameters only when they hold keys (see `isStateful`). */
export const STATEFUL_TYPES = ['aws_dynamodb_table', 'aws_s3_bucket', 'aws_kms_key', 'aws_ssm_parameter'] as const;

/** The part of one `resource_changes[]` entry of Terraform's JSON plan that the check reads. */
export interface PlannedChange {
  address: string;
  type: string;
  mode?: string;
  change: { actions: string[]; before?: unknown; after?: unknown };
  action_reason?: string;
}

/** One stateful resource the plan would destroy (`delete`) or replace (`replace`: delete + create in either order). */
export interface StatefulFinding {
  address: string;
  type: string;
  kind: 'delete' | 'replace';
  /** Terraform's reason, when it gives one (e.g. `replace_because_cannot_update`). */
  reason?: string;
}

export class PlanFormatError extends Error {}

/** Whether a resource of this type (with its state before the change) holds state that a destroy loses. */
export function isStateful(type: string, before: unknown): boolean {
  if (type === 'aws_ssm_parameter') {
    const name = before && typeof before === 'object' ? (before as { name?: unknown }).name : undefined;
    return typeof name === 'string' && /key/i.test(name);
  }
  return (STATEFUL_TYPES as readonly string[]).includes(type);
}

/**
 * The stateful destroys and replaces in a parsed JSON plan (the object `terraform show -json`
 * prints). Throws PlanFormatError when the document is not a Terraform JSON plan.
 */
export function statefulChanges(plan: unknown): StatefulFinding[] {
  if (!plan || typeof plan !== 'object' || typeof (plan as { format_version?: unknown }).format_version !== 'string') {
    throw new PlanFormatError('not a Terraform JSON plan (no format_version): pass the output of `terraform show -json <plan file>`');
  }
  const changes = (plan as { resource_changes?: unknown }).resource_changes ?? [];
  if (!Array.isArray(changes)) throw new PlanFormatError('resource_changes is not a list');
  const findings: StatefulFinding[] = [];
  for (const raw of changes as PlannedChange[]) {
    if (!raw || typeof raw.address !== 'string' || !raw.change || !Array.isArray(raw.change.actions)) {
      throw new PlanFormatError(`a resource change without address or actions: ${JSON.stringify(raw).slice(0, 200)}`);
    }
    if (raw.mode === 'data') continue;
    const actions = raw.change.actions;
    if (!actions.includes('delete')) continue;
    if (!isStateful(raw.type, raw.change.before)) continue;
    findings.push({
      address: raw.address,
      type: raw.type,
      kind: actions.includes('create') ? 'replace' : 'delete',
      ...(raw.action_reason ? { reason: raw.action_reason } : {}),
    });
  }
  return findings;
}

/** The verdict of the plan check: exit code 0 (nothing stateful, or approved) or 1, and the lines to print. */
export function planVerdict(findings: StatefulFinding[], approved: boolean): { code: 0 | 1; lines: string[] } {
  if (findings.length === 0) return { code: 0, lines: ['plan-check: no stateful resource is destroyed or replaced'] };
  const lines = findings.map((f) => `  ${f.kind.toUpperCase()} ${f.address}${f.reason ? ` (${f.reason})` : ''}`);
  if (approved) {
    return { code: 0, lines: [`plan-check: ${findings.length} stateful resource(s) destroyed or replaced, APPROVED by ALLOW_STATEFUL_CHANGES:`, ...lines] };
  }
  return {
    code: 1,
    lines: [
      `plan-check: ${findings.length} stateful resource(s) would be destroyed or replaced (data loss):`,
      ...lines,
      'plan-check: refused. If this is intended, re-run with the ALLOW_STATEFUL_CHANGES parameter set (a person decides, not the pipeline).',
    ],
  };
}
