# shellcheck shell=bash
# Sourced by every stage script of the deploy pipeline (Jenkinsfile; `npm run test:deploy` runs the
# same scripts against the emulator). One place for the settings every stage shares:
#
#   AWS_REGION        the one source of the region: the AWS CLI and SDK, the Terraform provider
#                     (TF_VAR_region) and the state backend (-backend-config=region=...) all take it
#                     from here; a tfvars file that sets `region` is refused.
#   PIPELINE_MODE     deploy | read-only (default). Only `deploy` (main) may push, bootstrap or
#                     apply; read-only builds (branches, PRs) run with a read-only identity and plan
#                     without taking the state lock.
#   ARCHITECTURE      x86_64 (default) | arm64: the instances' CPU (TF_VAR_architecture) and the
#                     image platform (linux/amd64 | linux/arm64) the images are built for.
#   IMAGE_TAG         the images' tag (default: the commit).
#   IMAGES            the images to build and push (default: those Terraform deploys).
#   CONTAINER_ENGINE  docker (default) | podman.
#   TF_VARS_FILE      the environment's terraform.tfvars (optional).
#   ARTIFACTS_DIR     where plans and logs go (default test-artifacts/pipeline).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

: "${AWS_REGION:?AWS_REGION must be set: it is the one source of the region}"
export AWS_REGION AWS_DEFAULT_REGION=$AWS_REGION TF_VAR_region=$AWS_REGION
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

PIPELINE_MODE=${PIPELINE_MODE:-read-only}
case $PIPELINE_MODE in deploy | read-only) ;; *) die "PIPELINE_MODE must be deploy or read-only, not '$PIPELINE_MODE'" ;; esac

ARCHITECTURE=${ARCHITECTURE:-x86_64}
case $ARCHITECTURE in
  x86_64) IMAGE_PLATFORM=linux/amd64 ;;
  arm64) IMAGE_PLATFORM=linux/arm64 ;;
  *) die "ARCHITECTURE must be x86_64 or arm64, not '$ARCHITECTURE'" ;;
esac
export ARCHITECTURE IMAGE_PLATFORM TF_VAR_architecture=$ARCHITECTURE

IMAGE_TAG=${IMAGE_TAG:-$(git rev-parse HEAD)}
IMAGES=${IMAGES:-auth upload backup-sync}
ENGINE=${CONTAINER_ENGINE:-docker}
ARTIFACTS_DIR=${ARTIFACTS_DIR:-$ROOT/test-artifacts/pipeline}
TF_DIR=${TF_DIR:-$ROOT/terraform}
LAMBDA_ZIP=${LAMBDA_ZIP:-$ROOT/build/lambda/lambda.zip}
export IMAGE_TAG
mkdir -p "$ARTIFACTS_DIR"

tf() { terraform -chdir="$TF_DIR" "$@"; }

# The variable arguments of plan and apply: the environment's tfvars (never the region), the tag.
TF_VAR_ARGS=()
if [ -n "${TF_VARS_FILE:-}" ]; then
  [ -f "$TF_VARS_FILE" ] || die "TF_VARS_FILE=$TF_VARS_FILE does not exist"
  if grep -Eq '^[[:space:]]*region[[:space:]]*=' "$TF_VARS_FILE"; then
    die "$TF_VARS_FILE sets region: remove it, the region comes from AWS_REGION only"
  fi
  TF_VAR_ARGS+=(-var-file="$TF_VARS_FILE")
fi
TF_VAR_ARGS+=(-var "image_tag=$IMAGE_TAG" -var "lambda_zip_path=$LAMBDA_ZIP")

# Push, bootstrap and apply only in a deploy build.
require_deploy() {
  [ "$PIPELINE_MODE" = deploy ] || die "$1 runs only in a deploy build (PIPELINE_MODE=deploy, main); this build is $PIPELINE_MODE"
}

# The state lock: read-only identities cannot write the lock file, and never change state.
tf_lock_args() {
  if [ "$PIPELINE_MODE" = deploy ]; then echo "-lock-timeout=5m"; else echo "-lock=false"; fi
}
