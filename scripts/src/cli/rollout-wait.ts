import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { groupsToRoll, type InstanceRefresh, refreshVerdict } from '../pipeline/refresh';

/**
 * `node scripts/dist/cli/rollout-wait.js <plan.json> <since-epoch-ms>`: waits for the instance
 * refresh of every Auto Scaling group whose launch template the plan changed
 * (scripts/src/pipeline/refresh.ts), through the AWS CLI (`aws autoscaling
 * describe-instance-refreshes`, the agent's credentials and AWS_REGION). Exit 0 when all
 * succeeded; 1 on a failed, cancelled or rolled-back refresh, a refresh that never started, or
 * ROLLOUT_TIMEOUT_SECONDS (3600) passing. ROLLOUT_POLL_SECONDS (30) between looks.
 */
function describe(group: string): InstanceRefresh[] {
  const res = spawnSync('aws', ['autoscaling', 'describe-instance-refreshes', '--auto-scaling-group-name', group, '--max-records', '10', '--output', 'json'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (res.status !== 0) throw new Error(`aws autoscaling describe-instance-refreshes ${group}: ${res.stderr || res.error?.message}`);
  return (JSON.parse(res.stdout) as { InstanceRefreshes?: InstanceRefresh[] }).InstanceRefreshes ?? [];
}

async function main(): Promise<number> {
  const [planFile, sinceArg] = process.argv.slice(2);
  const since = Number(sinceArg);
  if (!planFile || !Number.isFinite(since)) {
    console.error('usage: rollout-wait <plan.json> <since: epoch ms before the apply>');
    return 2;
  }
  const groups = groupsToRoll(JSON.parse(readFileSync(planFile, 'utf8')));
  if (groups.length === 0) {
    console.log('rollout: the plan changes no launch template of an existing group: nothing to roll');
    return 0;
  }
  const pollMs = Number(process.env.ROLLOUT_POLL_SECONDS ?? 30) * 1000;
  const deadline = Date.now() + Number(process.env.ROLLOUT_TIMEOUT_SECONDS ?? 3600) * 1000;
  const pending = new Set(groups);
  let failed = 0;
  while (pending.size > 0) {
    for (const group of [...pending]) {
      const verdict = refreshVerdict(describe(group), since);
      if (verdict.state === 'waiting') {
        console.log(`rollout: ${group}: ${verdict.refresh.Status} ${verdict.refresh.PercentageComplete ?? 0}%`);
        continue;
      }
      pending.delete(group);
      if (verdict.state === 'done') console.log(`rollout: ${group}: instance refresh ${verdict.refresh.InstanceRefreshId} Successful`);
      else {
        failed += 1;
        console.error(`rollout: ${group}: FAILED: ${verdict.message}`);
      }
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      console.error(`rollout: timed out waiting for ${[...pending].join(', ')}`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return failed === 0 ? 0 : 1;
}

void main().then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    console.error(`rollout: ${err.message}`);
    process.exitCode = 1;
  },
);
