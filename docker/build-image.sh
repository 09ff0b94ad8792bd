#!/bin/sh
# Builds one image of docker/images.json with docker (or CONTAINER_ENGINE=podman):
#   docker/build-image.sh NAME [extra build options, e.g. -t scs/auth:dev --build-arg NODE_IMAGE=...]
# Run from anywhere; the build context is the repository root.
set -eu
cd "$(dirname "$0")/.."
name=${1:?usage: docker/build-image.sh NAME [build options...] (names: docker/images.json)}
shift
args=$(node -e '
  const images = require("./docker/images.json");
  const image = images[process.argv[1]];
  if (!image) { console.error(`unknown image ${process.argv[1]}; known: ${Object.keys(images).join(", ")}`); process.exit(2); }
  const out = ["--target", image.target, "--build-arg", `WORKSPACE=${image.workspace}`, "--build-arg", `ENTRY=${image.entry}`];
  if (image.port) out.push("--build-arg", `PORT=${image.port}`);
  if (image.nodeOptions) out.push("--build-arg", `NODE_OPTIONS=${image.nodeOptions}`);
  console.log(out.join("\n"));
' "$name")
# One word per line (a value may hold spaces, e.g. several Node options): split on newlines only.
set -f
old_ifs=$IFS
IFS='
'
# shellcheck disable=SC2086 # split on purpose, on newlines
set -- $args "$@"
IFS=$old_ifs
exec ${CONTAINER_ENGINE:-docker} build -f docker/Dockerfile "$@" .
