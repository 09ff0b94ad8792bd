#!/usr/bin/env bash
# The provider lock file (terraform/.terraform.lock.hcl) for every platform operators and agents
# use, run by the Init stage after `terraform init` (and by hand: it needs only AWS_REGION set).
# Where the registry is reachable (PROVIDERS_LOCK=registry, the default) it adds the missing
# hashes, the same as
#   terraform -chdir=terraform providers lock -platform=linux_amd64 -platform=linux_arm64 -platform=darwin_amd64 -platform=darwin_arm64
# and warns when the committed file lacked any (commit the archived one). PROVIDERS_LOCK=mirror:<dir>
# checks it against a filesystem mirror instead (linux_amd64 only: a mirror holds one platform);
# PROVIDERS_LOCK=none skips the check.
#   PROVIDERS_LOCK_PLATFORMS  default "linux_amd64 linux_arm64 darwin_amd64 darwin_arm64"
source "$(dirname "$0")/lib.sh"

lock=${PROVIDERS_LOCK:-registry}
platforms=${PROVIDERS_LOCK_PLATFORMS:-linux_amd64 linux_arm64 darwin_amd64 darwin_arm64}
lock_args=()
case $lock in
  registry) for p in $platforms; do lock_args+=(-platform="$p"); done ;;
  mirror:*) lock_args+=(-fs-mirror="${lock#mirror:}" -platform=linux_amd64) ;;
  none) log "PROVIDERS_LOCK=none: the provider lock file is not checked"; exit 0 ;;
  *) die "PROVIDERS_LOCK must be registry, mirror:<dir> or none" ;;
esac
[ -f "$TF_DIR/.terraform.lock.hcl" ] || die "$TF_DIR/.terraform.lock.hcl is missing: it is committed with the module"
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
