#!/usr/bin/env bash
# Stage "Init": terraform init against the shared S3 state (backend.tf: encrypted, locked with
# use_lockfile) with the environment's backend file (TF_BACKEND_CONFIG: bucket, key) and the region
# from AWS_REGION. Then the provider lock file for every platform operators use: where the
# registry is reachable (PROVIDERS_LOCK=registry, the default) `terraform providers lock` adds the
# missing hashes and the build fails if the committed file lacked any (commit the archived one);
# PROVIDERS_LOCK=mirror:<dir> checks it against a filesystem mirror instead (linux_amd64 only).
#   TF_BACKEND_CONFIG    file with bucket and key (backend.hcl.example)
#   TF_BACKEND_ENDPOINT  S3 endpoint for the state (the emulator in the rehearsal; unset on AWS)
#   PROVIDERS_LOCK_PLATFORMS  default "linux_amd64 linux_arm64 darwin_amd64 darwin_arm64"
source "$(dirname "$0")/lib.sh"
: "${TF_BACKEND_CONFIG:?TF_BACKEND_CONFIG must name the backend settings file (bucket, key)}"
[ -f "$TF_BACKEND_CONFIG" ] || die "TF_BACKEND_CONFIG=$TF_BACKEND_CONFIG does not exist"
if grep -Eq '^[[:space:]]*region[[:space:]]*=' "$TF_BACKEND_CONFIG"; then
  die "$TF_BACKEND_CONFIG sets region: remove it, the region comes from AWS_REGION only"
fi

args=(-input=false -reconfigure -backend-config="$TF_BACKEND_CONFIG" -backend-config="region=$AWS_REGION")
if [ -n "${TF_BACKEND_ENDPOINT:-}" ]; then
  args+=(-backend-config="endpoints={s3=\"$TF_BACKEND_ENDPOINT\"}" -backend-config=use_path_style=true
         -backend-config=skip_credentials_validation=true -backend-config=skip_requesting_account_id=true
         -backend-config=skip_metadata_api_check=true -backend-config=skip_region_validation=true)
fi
tf init "${args[@]}"

lock=${PROVIDERS_LOCK:-registry}
platforms=${PROVIDERS_LOCK_PLATFORMS:-linux_amd64 linux_arm64 darwin_amd64 darwin_arm64}
lock_args=()
case $lock in
  registry) for p in $platforms; do lock_args+=(-platform="$p"); done ;;
  mirror:*) lock_args+=(-fs-mirror="${lock#mirror:}" -platform=linux_amd64) ;;
  none) log "PROVIDERS_LOCK=none: the provider lock file is not checked"; exit 0 ;;
  *) die "PROVIDERS_LOCK must be registry, mirror:<dir> or none" ;;
esac
cp "$TF_DIR/.terraform.lock.hcl" "$ARTIFACTS_DIR/terraform.lock.hcl.committed"
tf providers lock "${lock_args[@]}"
cp "$TF_DIR/.terraform.lock.hcl" "$ARTIFACTS_DIR/terraform.lock.hcl"
if ! diff -u "$ARTIFACTS_DIR/terraform.lock.hcl.committed" "$TF_DIR/.terraform.lock.hcl"; then
  # This build uses the completed file; the repository should hold it too.
  log "WARNING: terraform/.terraform.lock.hcl lacked the hashes above. Commit the completed file, archived as"
  log "WARNING: $ARTIFACTS_DIR/terraform.lock.hcl (the same as: terraform -chdir=terraform providers lock ${lock_args[*]})"
else
  log "provider lock file holds every hash for: ${lock_args[*]}"
fi
