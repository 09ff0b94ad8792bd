#!/usr/bin/env bash
# Post-build clean-up on the agent: the saved plan and the images this build tagged.
source "$(dirname "$0")/lib.sh"
rm -f "$TF_DIR/tfplan" "$TF_DIR/bootstrap.tfplan"
for image in $IMAGES; do
  $ENGINE image rm "scs/$image:$IMAGE_TAG" >/dev/null 2>&1 || true
done
