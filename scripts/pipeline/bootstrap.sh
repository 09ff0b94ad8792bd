#!/usr/bin/env bash
# Stage "Bootstrap": what must exist before the first full apply of a new environment.
#   1. The ECR repositories (the push needs them) and the secrets KMS key (the signing key is
#      encrypted under it): a targeted apply, checked like any plan, when the state has no
#      repository yet.
#   2. The token-signing key in SSM, written by the ops command `keys:rotate` (never by
#      Terraform) when the parameter does not exist: auth must find it when its instances start.
# An existing environment: nothing to do. Deploy builds only (read-only builds print the state).
source "$(dirname "$0")/lib.sh"

if tf state list 'aws_ecr_repository.this' | grep -q .; then
  log "the ECR repositories exist: no bootstrap apply needed"
else
  require_deploy "bootstrapping a new environment"
  log "new environment: applying the ECR repositories and the secrets key first"
  targets=(-target=aws_ecr_repository.this -target=aws_ecr_lifecycle_policy.this
           -target='aws_kms_key.this["secrets"]' -target='aws_kms_alias.this["secrets"]')
  # shellcheck disable=SC2046
  tf plan -input=false $(tf_lock_args) "${TF_VAR_ARGS[@]}" "${targets[@]}" -out=bootstrap.tfplan
  tf show -json bootstrap.tfplan >"$ARTIFACTS_DIR/bootstrap-plan.json"
  node scripts/dist/cli/plan-check.js "$ARTIFACTS_DIR/bootstrap-plan.json"
  # shellcheck disable=SC2046
  tf apply -input=false $(tf_lock_args) bootstrap.tfplan
  rm -f "$TF_DIR/bootstrap.tfplan"
fi

# The names Terraform derives (the same expressions as the full apply), without an output that a
# targeted apply may not have written yet.
expr='jsonencode({ signing = local.ssm_parameter_names.jwt_signing_key, public = local.ssm_parameter_names.jwt_public_keys, kms = local.names.secrets_kms_key_alias })'
# console prints the JSON as an HCL string literal: "{\"kms\":...}"
eval "$(echo "$expr" | tf console "${TF_VAR_ARGS[@]}" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    for (const [k, v] of Object.entries(JSON.parse(JSON.parse(s.trim())))) console.log(`${k}=${JSON.stringify(v)}`);
  });')"
[ -n "${signing:-}" ] && [ -n "${public:-}" ] && [ -n "${kms:-}" ] || die "could not read the parameter names from terraform console"

# Only a definite ParameterNotFound writes a key: any other error (access, network) stops here,
# never rotating a key that may exist.
if found=$(aws ssm get-parameter --name "$signing" --query Parameter.Name --output text 2>&1); then
  log "the signing key $signing exists"
elif grep -q ParameterNotFound <<<"$found"; then
  require_deploy "writing the first signing key"
  log "no signing key at $signing: writing one with keys:rotate (under $kms)"
  JWT_SIGNING_KEY_PARAM=$signing JWT_PUBLIC_KEYS_PARAM=$public SECRETS_KMS_KEY_ID=$kms \
    node scripts/bin/keys-rotate.mjs
else
  die "cannot tell whether $signing exists: $found"
fi
