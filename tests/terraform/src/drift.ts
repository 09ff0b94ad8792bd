/**
 * The re-plan after an apply must change nothing. A few attributes come back from the AWS
 * emulator (moto 5) differently from what AWS returns, so the provider plans an update that
 * real AWS would not need. Each such difference is listed here with its reason; any other
 * change fails the check. terraform/README.md lists the same.
 */
export interface EmulatorDifference {
  resourceType: string;
  /** Top-level attributes that may differ. */
  attributes: string[];
  reason: string;
  /**
   * Makes `before` comparable with `after` where only part of an attribute differs (e.g. one
   * element of a list), instead of ignoring the whole attribute.
   */
  normalise?: (before: Record<string, unknown>) => Record<string, unknown>;
}

export const EMULATOR_DIFFERENCES: readonly EmulatorDifference[] = [
  {
    resourceType: 'aws_autoscaling_policy',
    attributes: ['enabled', 'predictive_scaling_configuration'],
    reason: 'moto returns no Enabled flag and an empty PredictiveScalingConfiguration for every policy',
  },
  {
    resourceType: 'aws_launch_template',
    attributes: ['default_version', 'latest_version'],
    reason:
      "moto copies the launch template's own tags into its launch data as a tag specification of type launch-template, so every plan makes a new version",
    normalise: (before) => ({
      ...before,
      tag_specifications: ((before.tag_specifications as { resource_type?: string }[] | undefined) ?? []).filter(
        (spec) => spec.resource_type !== 'launch-template',
      ),
    }),
  },
  {
    resourceType: 'aws_autoscaling_group',
    // capacity_reservation_specification: computed, unknown in any update plan.
    attributes: ['launch_template', 'capacity_reservation_specification'],
    reason: "the group follows the launch template's latest version (see aws_launch_template)",
  },
  {
    resourceType: 'aws_s3_bucket_notification',
    attributes: ['eventbridge'],
    reason: 'moto delivers to EventBridge but GetBucketNotificationConfiguration omits EventBridgeConfiguration',
  },
  {
    resourceType: 'aws_sqs_queue',
    attributes: ['redrive_policy'],
    reason: 'moto returns the redrive policy JSON with other whitespace, which the provider compares as text',
  },
];

/** A `resource_changes` entry of Terraform's JSON plan. */
export interface ResourceChange {
  address: string;
  type: string;
  mode: 'managed' | 'data';
  change: { actions: string[]; before: unknown; after: unknown; after_unknown?: unknown };
}

export interface DriftReport {
  /** Changes no emulator difference explains: the check fails on any. */
  unexplained: { address: string; actions: string[]; attributes: string[] }[];
  /** Changes explained by EMULATOR_DIFFERENCES, with the reason. */
  explained: { address: string; attributes: string[]; reason: string }[];
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** True when `unknown` (a plan's after_unknown) marks anything as unknown. */
function hasUnknown(unknown: unknown): boolean {
  if (unknown === true) return true;
  if (Array.isArray(unknown)) return unknown.some(hasUnknown);
  if (isObject(unknown)) return Object.values(unknown).some(hasUnknown);
  return false;
}

/** Top-level attributes that differ between before and after (or become unknown). */
export function changedAttributes(change: ResourceChange['change']): string[] {
  const before = isObject(change.before) ? change.before : {};
  const after = isObject(change.after) ? change.after : {};
  const unknown = isObject(change.after_unknown) ? change.after_unknown : {};
  const keys = new Set([...Object.keys(before), ...Object.keys(after), ...Object.keys(unknown)]);
  return [...keys].filter((k) => hasUnknown(unknown[k]) || !deepEqual(before[k], after[k])).sort();
}

/** Sorts a re-plan's changes into those the emulator explains and the rest. */
export function analyseReplan(changes: readonly ResourceChange[], differences = EMULATOR_DIFFERENCES): DriftReport {
  const report: DriftReport = { unexplained: [], explained: [] };
  for (const rc of changes) {
    const actions = rc.change.actions;
    if (actions.length === 1 && actions[0] === 'no-op') continue;
    const difference = rc.mode === 'managed' && actions.length === 1 && actions[0] === 'update' ? differences.find((d) => d.resourceType === rc.type) : undefined;
    const change =
      difference?.normalise && isObject(rc.change.before) ? { ...rc.change, before: difference.normalise(rc.change.before) } : rc.change;
    const attributes = changedAttributes(change);
    const rest = attributes.filter((a) => !difference?.attributes.includes(a));
    if (difference && rest.length === 0) report.explained.push({ address: rc.address, attributes, reason: difference.reason });
    else report.unexplained.push({ address: rc.address, actions, attributes: difference ? rest : attributes });
  }
  return report;
}
