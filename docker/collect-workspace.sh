#!/bin/sh
# Used inside docker/Dockerfile's build stages only.
# Copies what each named workspace ships at run time into OUT_DIR, keeping repo-relative paths:
#   - its package.json (Node resolves `main`/`exports` through it)
#   - the paths its package.json lists in "files" (npm's own convention for "what this
#     package ships"); without a "files" field: dist/, plus public/ when it exists (static
#     assets served with @fastify/static)
# and drops what is never needed at run time (*.tsbuildinfo, test folders, *.test.js).
#
#   sh docker/collect-workspace.sh OUT_DIR WORKSPACE_DIR...
set -eu

out=$1
shift
for ws in "$@"; do
  [ -f "$ws/package.json" ] || { echo "collect-workspace: $ws/package.json not found" >&2; exit 1; }
  mkdir -p "$out/$ws"
  cp "$ws/package.json" "$out/$ws/"
  paths=$(node -e '
    const pkg = require(require("node:path").resolve(process.argv[1], "package.json"));
    const fs = require("node:fs");
    const files = Array.isArray(pkg.files) && pkg.files.length > 0 ? pkg.files
      : ["dist", ...(fs.existsSync(process.argv[1] + "/public") ? ["public"] : [])];
    console.log(files.map((f) => f.replace(/^\.\//, "").replace(/\/+$/, "")).join("\n"));
  ' "$ws")
  for p in $paths; do
    case $p in
      *'*'*|*..*|/*) echo "collect-workspace: $ws: unsupported \"files\" entry '$p' (use plain paths)" >&2; exit 1 ;;
    esac
    if [ ! -e "$ws/$p" ]; then
      echo "collect-workspace: $ws/$p does not exist (did the build run?)" >&2
      exit 1
    fi
    mkdir -p "$out/$ws/$(dirname "$p")"
    cp -R "$ws/$p" "$out/$ws/$p"
  done
  find "$out/$ws" \( -name '*.tsbuildinfo' -o -name '*.test.js' -o -name '*.test.js.map' \
    -o -name '*.test.d.ts' -o -name '*.test.d.ts.map' \) -type f -delete
  find "$out/$ws" -depth \( -name test -o -name tests -o -name __tests__ \) -type d -exec rm -rf {} +
done
