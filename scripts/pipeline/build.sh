#!/usr/bin/env bash
# Stage "Build": the images of IMAGES (docker/images.json) for the instances' platform
# (IMAGE_PLATFORM from ARCHITECTURE: an arm64 agent still builds linux/amd64 for x86 instances),
# tagged scs/<image>:<IMAGE_TAG> with the commit as a label, and the sensitive-mover's Lambda zip
# from the same Dockerfile. BUILD_ARGS: extra build options (e.g. --build-arg NODE_IMAGE=...).
source "$(dirname "$0")/lib.sh"
read -r -a extra <<<"${BUILD_ARGS:-}"
for image in $IMAGES; do
  log "building $image for $IMAGE_PLATFORM"
  CONTAINER_ENGINE=$ENGINE docker/build-image.sh "$image" --platform "$IMAGE_PLATFORM" \
    --label "org.opencontainers.image.revision=$IMAGE_TAG" -t "scs/$image:$IMAGE_TAG" "${extra[@]}"
  arch=$($ENGINE image inspect --format '{{.Os}}/{{.Architecture}}' "scs/$image:$IMAGE_TAG")
  [ "$arch" = "$IMAGE_PLATFORM" ] || die "scs/$image:$IMAGE_TAG is $arch, the instances need $IMAGE_PLATFORM"
done
log "building the Lambda zip"
mkdir -p "$(dirname "$LAMBDA_ZIP")"
$ENGINE build -f docker/Dockerfile --target lambda-zip "${extra[@]}" --output "type=local,dest=$(dirname "$LAMBDA_ZIP")" .
[ -s "$LAMBDA_ZIP" ] || die "no Lambda zip at $LAMBDA_ZIP"
