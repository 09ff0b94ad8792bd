#!/usr/bin/env bash
# Stage "Plan": terraform plan with the commit's image tag, saved (tfplan) and archived as text and
# JSON, then the plan check (scripts/src/pipeline/plan-check.ts): a destroy or replace of a
# table, bucket, KMS key or key-holding SSM parameter fails the build unless ALLOW_STATEFUL_CHANGES
# is true (a build parameter a person sets). Read-only builds plan without the state lock.
source "$(dirname "$0")/lib.sh"
[ -s "$LAMBDA_ZIP" ] || die "no Lambda zip at $LAMBDA_ZIP: run scripts/pipeline/build.sh first"
# shellcheck disable=SC2046
tf plan -input=false $(tf_lock_args) "${TF_VAR_ARGS[@]}" -out=tfplan
tf show -no-color tfplan >"$ARTIFACTS_DIR/plan.txt"
tf show -json tfplan >"$ARTIFACTS_DIR/plan.json"
node scripts/dist/cli/plan-check.js "$ARTIFACTS_DIR/plan.json"
