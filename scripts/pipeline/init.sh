#!/usr/bin/env bash
# Stage "Init": terraform init against the shared S3 state (backend.tf: encrypted, locked with
# use_lockfile) with the environment's backend file (TF_BACKEND_CONFIG: bucket, key) and the region
# from AWS_REGION. Then the provider lock file for every platform operators use
# (providers-lock.sh: `terraform providers lock -platform=...` where the registry is reachable,
# PROVIDERS_LOCK=registry, the default; PROVIDERS_LOCK=mirror:<dir> checks it against a filesystem
# mirror instead, linux_amd64 only).
#   TF_BACKEND_CONFIG    file with bucket and key (backend.hcl.example)
#   TF_BACKEND_ENDPOINT  S3 endpoint for the state (the emulator in the rehearsal; unset on AWS)
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

# The provider lock file for every platform (scripts/pipeline/providers-lock.sh).
bash "$(dirname "$0")/providers-lock.sh"
