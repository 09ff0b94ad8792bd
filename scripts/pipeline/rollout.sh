#!/usr/bin/env bash
# Stage "Rollout": waits for the instance refresh of every group the plan rolled
# (scripts/src/cli/rollout-wait.ts) and fails on a rollback, a failure, a cancel, or a refresh that
# never started. A plan that changed no launch template has nothing to wait for.
source "$(dirname "$0")/lib.sh"
require_deploy "the rollout wait"
[ -f "$ARTIFACTS_DIR/apply-started-ms" ] || die "no apply time recorded: run scripts/pipeline/apply.sh first"
node scripts/dist/cli/rollout-wait.js "$ARTIFACTS_DIR/plan.json" "$(cat "$ARTIFACTS_DIR/apply-started-ms")"
