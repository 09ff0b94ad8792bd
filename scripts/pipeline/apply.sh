#!/usr/bin/env bash
# Stage "Apply": applies exactly the plan the check and the approver saw (terraform/tfplan). The
# Auto Scaling groups whose launch template changed start an instance refresh (auto rollback on
# their unhealthy-host alarms); the time before the apply is kept for the rollout wait.
# Deploy builds only.
source "$(dirname "$0")/lib.sh"
require_deploy "terraform apply"
[ -f "$TF_DIR/tfplan" ] || die "no saved plan: run scripts/pipeline/plan.sh first"
node -p 'Date.now() - 60000' >"$ARTIFACTS_DIR/apply-started-ms"
tf apply -input=false -lock-timeout=5m tfplan
