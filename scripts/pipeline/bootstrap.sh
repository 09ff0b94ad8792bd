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

# The names Terraform derives for this environment (output signing_key_settings, written by the
# bootstrap apply too).
if ! settings=$(tf output -json signing_key_settings 2>/dev/null); then
  log "WARNING: the state has no signing_key_settings output yet (made before it existed): the signing key is checked after the next apply"
  exit 0
fi
eval "$(node -e '
  for (const [k, v] of Object.entries(JSON.parse(process.argv[1]))) console.log(`${k}=${JSON.stringify(v)}`);
' "$settings")"
signing=$JWT_SIGNING_KEY_PARAM
[ -n "$signing" ] && [ -n "$JWT_PUBLIC_KEYS_PARAM" ] && [ -n "$SECRETS_KMS_KEY_ID" ] || die "signing_key_settings is incomplete: $settings"

# Only a definite ParameterNotFound writes a key: any other error (access, network) stops here,
# never rotating a key that may exist.
if found=$(aws ssm get-parameter --name "$signing" --query Parameter.Name --output text 2>&1); then
  log "the signing key $signing exists"
elif grep -q ParameterNotFound <<<"$found"; then
  require_deploy "writing the first signing key"
  log "no signing key at $signing: writing one with keys:rotate (under $SECRETS_KMS_KEY_ID)"
  JWT_SIGNING_KEY_PARAM=$signing JWT_PUBLIC_KEYS_PARAM=$JWT_PUBLIC_KEYS_PARAM SECRETS_KMS_KEY_ID=$SECRETS_KMS_KEY_ID \
    node scripts/bin/keys-rotate.mjs
else
  die "cannot tell whether $signing exists: $found"
fi
