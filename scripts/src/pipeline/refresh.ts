/**
 * The rollout wait of the deploy pipeline (scripts/pipeline/rollout.sh): after `terraform apply`,
 * each Auto Scaling group whose launch template version changed has an instance refresh (started
 * by Terraform's `instance_refresh` block, with auto rollback on the unhealthy-host alarms). The
 * pipeline waits for it and fails on anything but success: a rollback, a failure, a cancel, and a
 * refresh that was expected but never started ("no refresh found" is not success).
 */
import type { PlannedChange } from './plan-check';

/** One entry of `aws autoscaling describe-instance-refreshes` (the fields read). */
export interface InstanceRefresh {
  InstanceRefreshId: string;
  Status: string;
  StatusReason?: string;
  /** ISO 8601 time the refresh started. */
  StartTime?: string;
  PercentageComplete?: number;
}

export type RefreshVerdict =
  | { state: 'done'; refresh: InstanceRefresh }
  | { state: 'waiting'; refresh: InstanceRefresh }
  | { state: 'failed'; refresh?: InstanceRefresh; message: string };

const IN_PROGRESS = new Set(['Pending', 'InProgress', 'Cancelling', 'RollbackInProgress', 'Baking']);

/**
 * The verdict on a group's refreshes: the newest one that started at or after `since` (ms since
 * the epoch, a little before the apply) decides. None such: failed ("no refresh found").
 * Successful: done. Pending/InProgress/Baking (and a rollback or cancel under way): waiting.
 * Anything else (Failed, Cancelled, RollbackSuccessful, RollbackFailed, unknown): failed.
 */
export function refreshVerdict(refreshes: InstanceRefresh[], since: number): RefreshVerdict {
  const recent = refreshes
    .filter((r) => r.StartTime !== undefined && Date.parse(r.StartTime) >= since)
    .sort((a, b) => Date.parse(b.StartTime as string) - Date.parse(a.StartTime as string));
  const refresh = recent[0];
  if (!refresh) return { state: 'failed', message: `no instance refresh found that started after ${new Date(since).toISOString()}` };
  if (refresh.Status === 'Successful') return { state: 'done', refresh };
  if (IN_PROGRESS.has(refresh.Status)) return { state: 'waiting', refresh };
  const reason = refresh.StatusReason ? `: ${refresh.StatusReason}` : '';
  const rolledBack = refresh.Status.startsWith('Rollback') ? ' (rolled back: the new instances did not stay healthy)' : '';
  return { state: 'failed', refresh, message: `instance refresh ${refresh.InstanceRefreshId} ended ${refresh.Status}${rolledBack}${reason}` };
}

/**
 * The Auto Scaling groups (their names) that the plan rolls: an existing group whose launch
 * template version changes. A group the plan creates starts its instances from the new version
 * and has no refresh to wait for.
 */
export function groupsToRoll(plan: { resource_changes?: PlannedChange[] }): string[] {
  const groups: string[] = [];
  for (const rc of plan.resource_changes ?? []) {
    if (rc.type !== 'aws_autoscaling_group' || !rc.change.actions.includes('update')) continue;
    const before = rc.change.before as { launch_template?: unknown } | undefined;
    const after = rc.change.after as { name?: string; launch_template?: unknown } | undefined;
    if (JSON.stringify(before?.launch_template) === JSON.stringify(after?.launch_template)) continue;
    groups.push(after?.name ?? rc.address);
  }
  return groups;
}
