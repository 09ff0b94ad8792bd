#!/usr/bin/env bash
# Opt-in check of the container images (not part of `npm test`), with podman on a machine
# that has no Docker engine and no image registry:
#   1. builds the local Node base image if missing (scripts/bin/build-base-image.sh)
#   2. builds every image of docker/images.json on it (docker/build-image.sh), and the
#      sensitive-mover's Lambda zip (target lambda-zip) when that workspace exists
#   3. checks each image: runs as a non-root user, has a HEALTHCHECK (HTTP services), no NODE_ENV, the
#      NODE_OPTIONS docker/images.json gives it (in effect), and holds
#      no .venv, *.tfstate, test folders/files, TypeScript sources or secret-looking files
#   4. runs the gateway image and checks GET /health on a free 127.0.0.1 port, its
#      HEALTHCHECK, and that it stops promptly on SIGTERM
#   5. if moto_server is installed on this machine: starts it on a free 127.0.0.1 port,
#      runs the provisioning (gateway image) against it, and checks each service's /health
#      (without moto the services are only started; an early exit is reported, not failed)
# Prints PASS/FAIL lines; exits non-zero if any check failed.
#
# Usage: scripts/bin/image-check.sh [image...]      (default: every image of docker/images.json)
# Settings: SCS_BASE_IMAGE, SCS_BASE_NPM, SCS_PODMAN_CONF_DIR (see build-base-image.sh),
#           SCS_IMAGE_PREFIX (default localhost/scs-), SCS_IMAGE_TAG (default check).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2

TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || mapfile -t TARGETS < <(node -p 'Object.keys(require("./docker/images.json")).join("\n")')
PREFIX=${SCS_IMAGE_PREFIX:-localhost/scs-}
TAG=${SCS_IMAGE_TAG:-check}

fails=0
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; fails=$((fails + 1)); }
info() { printf 'INFO %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scs-image-check.XXXXXX")
CONTAINERS=()
MOTO_PID=
cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do podman rm -f -t 2 "$c" >/dev/null 2>&1 || true; done
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("node:net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
# http_status URL -> prints the status code, or 000 when nothing answers
http_status() {
  node -e 'fetch(process.argv[1],{signal:AbortSignal.timeout(3000)}).then(r=>console.log(r.status),()=>console.log("000"))' "$1"
}
# wait_http URL SECONDS CONTAINER -> 0 when URL answered 200 in time (stops early if the container exited)
wait_http() {
  local url=$1 secs=$2 c=${3:-} i
  for ((i = 0; i < secs * 2; i++)); do
    [ "$(http_status "$url")" = 200 ] && return 0
    if [ -n "$c" ] && [ "$(podman inspect --format '{{.State.Running}}' "$c" 2>/dev/null)" != true ]; then return 1; fi
    sleep 0.5
  done
  return 1
}

# ------------------------------------------------------------------ base image
# npm >= 11 validates that the lockfile lists every platform's optional packages; a registry
# mirror that only serves some platforms makes `npm ci` refuse any lockfile. Detect that with
# the host's npm and fall back to npm 10 in the base image, saying so.
if [ -z "${SCS_BASE_NPM:-}" ] && [ -z "${SCS_BASE_IMAGE:-}" ]; then
  mkdir -p "$WORK/manifests"
  find . -name node_modules -prune -o -type f \( -name package.json -o -name package-lock.json -o -name .npmrc \) -print \
    | xargs cp --parents -t "$WORK/manifests"
  if ! (cd "$WORK/manifests" && npm ci --dry-run --ignore-scripts --no-audit --no-fund >"$WORK/npm-ci.log" 2>&1); then
    if grep -q 'in sync' "$WORK/npm-ci.log"; then
      info "host npm $(npm -v 2>/dev/null) refuses 'npm ci' on this lockfile here ($(grep -m1 -o 'Missing: [^ ]*' "$WORK/npm-ci.log") ...);"
      info "using SCS_BASE_NPM=npm@10 for the base image (set SCS_BASE_NPM to choose another)"
      export SCS_BASE_NPM=npm@10
    fi
  fi
fi

if ! "$ROOT/scripts/bin/build-base-image.sh" >"$WORK/base.out" 2>"$WORK/base.err"; then
  cat "$WORK/base.err"
  fail "base image: scripts/bin/build-base-image.sh failed"
  exit 1
fi
eval "$(grep -E '^export (SCS_BASE_IMAGE|CONTAINERS_CONF)=' "$WORK/base.out")"
BASE_IMAGE=${SCS_BASE_IMAGE:-}
[ -n "$BASE_IMAGE" ] && podman image exists "$BASE_IMAGE" || { fail "base image: not found"; exit 1; }
pass "base image $BASE_IMAGE (CONTAINERS_CONF=$CONTAINERS_CONF)"

# ------------------------------------------------------------------ build
BUILT=()
for t in "${TARGETS[@]}"; do
  img=$PREFIX$t:$TAG
  start=$SECONDS
  if CONTAINER_ENGINE=podman docker/build-image.sh "$t" --format docker --layers \
       --build-arg "NODE_IMAGE=$BASE_IMAGE" -t "$img" >"$WORK/build-$t.log" 2>&1; then
    pass "build $t -> $img ($((SECONDS - start))s, $(podman image inspect --format '{{.Size}}' "$img" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
    BUILT+=("$t")
  else
    fail "build $t (last lines of the log follow)"
    grep -v '^\(STEP\|-->\|COMMIT\)' "$WORK/build-$t.log" | tail -n 15 | sed 's/^/    /'
  fi
done

# The Lambda package comes out of the same build (target lambda-zip), once its workspace exists.
if [ -f services/sensitive-mover/package.json ]; then
  start=$SECONDS
  if podman build --format docker --layers -f docker/Dockerfile --target lambda-zip --build-arg "NODE_IMAGE=$BASE_IMAGE" \
       --output "type=local,dest=$WORK/lambda" . >"$WORK/build-lambda.log" 2>&1 \
     && node -e 'const b=require("fs").readFileSync(process.argv[1]); process.exit(b.readUInt32LE(0)===0x04034b50&&b.includes("index.js")?0:1)' "$WORK/lambda/lambda.zip"; then
    pass "build lambda-zip -> lambda.zip with index.js ($((SECONDS - start))s, $(stat -c %s "$WORK/lambda/lambda.zip") bytes)"
  else
    fail "build lambda-zip (last lines of the log follow)"
    tail -n 15 "$WORK/build-lambda.log" | sed 's/^/    /'
  fi
else
  info "services/sensitive-mover does not exist yet: no Lambda zip to build"
fi

# ------------------------------------------------------------------ static checks
for t in "${BUILT[@]}"; do
  img=$PREFIX$t:$TAG
  user=$(podman image inspect --format '{{.Config.User}}' "$img")
  uid=$(podman run --rm --network none --no-healthcheck --entrypoint id "$img" -u 2>/dev/null)
  if [ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] && [ -n "$uid" ] && [ "$uid" != 0 ]; then
    pass "$t runs as a non-root user (User=$user, uid=$uid)"
  else
    fail "$t user: User='$user' uid='$uid'"
  fi

  hc=$(podman image inspect --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}' "$img")
  if [ "$(node -p "require('./docker/images.json')['$t'].target")" = worker ]; then
    # A worker has no port: its liveness is its process (HEALTHCHECK NONE).
    case $hc in ''|*NONE*) pass "$t (worker) has no HTTP HEALTHCHECK" ;; *) fail "$t (worker) has a HEALTHCHECK: $hc" ;; esac
  else
    [ -n "$hc" ] && pass "$t has a HEALTHCHECK" || fail "$t has no HEALTHCHECK"
  fi

  if podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$img" | grep -q '^NODE_ENV='; then
    fail "$t sets NODE_ENV (the code never branches on it)"
  else
    pass "$t has no NODE_ENV"
  fi

  # NODE_OPTIONS as docker/images.json gives it ("nodeOptions"; none for most images), accepted by
  # node, and in effect: a young generation capped by --max-semi-space-size stays that small.
  want=$(node -p "require('./docker/images.json')['$t'].nodeOptions || ''")
  got=$(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$img" | sed -n 's/^NODE_OPTIONS=//p')
  if [ "$got" = "$want" ] && podman run --rm --network none --no-healthcheck --entrypoint node "$img" -e 0 >/dev/null 2>&1; then
    pass "$t NODE_OPTIONS='$got' (docker/images.json), node starts with it"
  else
    fail "$t NODE_OPTIONS='$got', docker/images.json says '$want' (or node refuses it)"
  fi
  semi=$(printf '%s\n' "$want" | sed -n 's/.*--max-semi-space-size=\([0-9][0-9]*\).*/\1/p')
  if [ -n "$semi" ]; then
    young=$(podman run --rm --network none --no-healthcheck --entrypoint node "$img" -e '
      const keep = []; for (let i = 0; i < 3e6; i++) keep.push({ i });
      console.log(require("v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size)' 2>/dev/null)
    if [ -n "$young" ] && [ "$young" -le $((2 * semi * 1024 * 1024)) ]; then
      pass "$t young generation stays at $young bytes under allocation (--max-semi-space-size=$semi)"
    else
      fail "$t young generation is '$young' bytes under allocation: --max-semi-space-size=$semi is not in effect"
    fi
  fi

  cmd=$(podman image inspect --format '{{json .Config.Cmd}}' "$img")
  case $cmd in '["node",'*) pass "$t CMD $cmd" ;; *) fail "$t CMD is not node: $cmd" ;; esac
  entry=$(podman run --rm --network none --no-healthcheck --entrypoint readlink "$img" /app/main.js 2>/dev/null)
  [ -n "$entry" ] && pass "$t main.js -> $entry" || fail "$t has no /app/main.js entry link"

  # Unwanted content anywhere in the filesystem (.venv, Terraform state) and, outside
  # node_modules, the project's tests, TypeScript sources and secret-looking files.
  bad=$(podman run --rm --network none --no-healthcheck --user 0 --entrypoint sh "$img" -c '
    find / -xdev \( -path /proc -o -path /sys \) -prune -o \
      \( -name .venv -o -name "*.tfstate" -o -name "*.tfstate.*" -o -name .terraform \) -print 2>/dev/null
    find /app -path "*/node_modules" -prune -o \( \
      \( -type d \( -name test -o -name tests -o -name __tests__ -o -name src -o -name coverage \) \) -o \
      \( -type f \( -name "*.test.*" -o -name "*.spec.*" -o -name "*.ts" ! -name "*.d.ts" -o -name ".env*" \
                    -o -name "*.pem" -o -name "*.key" -o -name "*.tfvars" -o -name ".npmrc" \) \) \) -print
  ' 2>"$WORK/content-$t.err")
  if [ -z "$bad" ] && [ ! -s "$WORK/content-$t.err" ]; then
    pass "$t contains no .venv, *.tfstate, tests, sources or secret files"
  else
    fail "$t contains unwanted files (or the check could not run):"
    printf '%s\n' "$bad" | head -n 20 | sed 's/^/    /'
    head -n 5 "$WORK/content-$t.err" | sed 's/^/    /'
  fi
done

# ------------------------------------------------------------------ run checks
# run_container NAME IMAGE [podman run args...] [-- command...]: hardened as in compose
run_container() {
  local name=$1 img=$2
  shift 2
  CONTAINERS+=("$name")
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman run -d --name "$name" --network host -e HOST=127.0.0.1 --read-only --cap-drop ALL \
    --security-opt no-new-privileges --init "$@" "$img" >/dev/null 2>>"$WORK/podman-run.err"
  # (podman prints systemd-timer errors for HEALTHCHECKs on hosts without systemd: noise)
}
has() { local x; for x in "${BUILT[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

EMU_URL=
if has gateway && command -v moto_server >/dev/null 2>&1; then
  emu_port=$(free_port)
  moto_server -H 127.0.0.1 -p "$emu_port" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  if wait_http "http://127.0.0.1:$emu_port/moto-api/" 20; then
    EMU_URL=http://127.0.0.1:$emu_port
    info "emulator: moto_server on $EMU_URL (pid $MOTO_PID)"
  else
    info "moto_server did not come up; services are checked without an emulator"
  fi
fi
AWS_ENV=(-e AWS_REGION=us-east-1 -e AWS_ACCESS_KEY_ID=test -e AWS_SECRET_ACCESS_KEY=test
         -e "AWS_ENDPOINT_URL=${EMU_URL:-http://127.0.0.1:9}" -e LOG_LEVEL=warn -e COOKIE_SECURE=false)

if [ -n "$EMU_URL" ]; then
  name=scs-check-provision-$$
  if podman run --name "$name" --no-healthcheck --network host --read-only --cap-drop ALL --security-opt no-new-privileges --init \
       "${AWS_ENV[@]}" "${PREFIX}gateway:$TAG" node packages/local-stack/dist/cli/provision.js >"$WORK/provision.log" 2>&1; then
    pass "provision (gateway image, node packages/local-stack/dist/cli/provision.js) against the emulator"
  else
    fail "provision against the emulator:"; tail -n 10 "$WORK/provision.log" | sed 's/^/    /'
  fi
  podman rm -f "$name" >/dev/null 2>&1 || true
fi

declare -A SVC_URL=()
for t in auth upload backup-sync; do
  has "$t" || continue
  port=$(free_port)
  name=scs-check-$t-$$
  run_container "$name" "$PREFIX$t:$TAG" -e "PORT=$port" "${AWS_ENV[@]}"
  if wait_http "http://127.0.0.1:$port/health" 30 "$name"; then
    pass "$t GET /health -> 200 on 127.0.0.1:$port"
    SVC_URL[$t]=http://127.0.0.1:$port
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      pass "$t HEALTHCHECK command succeeds inside the container"
    else
      fail "$t HEALTHCHECK command failed inside the container"
    fi
    if [ -n "$EMU_URL" ]; then
      if wait_http "http://127.0.0.1:$port/ready" 15 "$name"; then
        pass "$t GET /ready -> 200 (reaches the emulator from the container)"
      else
        fail "$t GET /ready -> $(http_status "http://127.0.0.1:$port/ready")"
      fi
    fi
  elif [ -z "$EMU_URL" ]; then
    info "$t did not answer /health without an emulator (expected if it needs AWS at start-up):"
    podman logs --tail 3 "$name" 2>&1 | sed 's/^/    /'
  else
    fail "$t GET /health on 127.0.0.1:$port:"; podman logs --tail 10 "$name" 2>&1 | sed 's/^/    /'
  fi
done

# The sensitive mover's runner has no port: it must start, keep polling its queue, and stop on SIGTERM.
if has sensitive-mover && [ -n "$EMU_URL" ]; then
  name=scs-check-sensitive-mover-$$
  run_container "$name" "${PREFIX}sensitive-mover:$TAG" "${AWS_ENV[@]}" -e LOG_LEVEL=warn
  sleep 5
  if [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
    pass "sensitive-mover runner is up after 5 s (polling the object-events queue)"
  else
    fail "sensitive-mover runner exited:"; podman logs --tail 10 "$name" 2>&1 | sed 's/^/    /'
  fi
fi

if has gateway; then
  port=$(free_port)
  name=scs-check-gateway-$$
  run_container "$name" "${PREFIX}gateway:$TAG" -e "GATEWAY_PORT=$port" \
    -e "AUTH_URL=${SVC_URL[auth]:-http://127.0.0.1:9}" -e "UPLOAD_URL=${SVC_URL[upload]:-http://127.0.0.1:9}" \
    -e "BACKUP_URL=${SVC_URL[backup-sync]:-http://127.0.0.1:9}" -e LOG_LEVEL=warn
  if wait_http "http://127.0.0.1:$port/health" 30 "$name"; then
    pass "gateway GET /health -> 200 on 127.0.0.1:$port"
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      pass "gateway HEALTHCHECK command succeeds inside the container"
    else
      fail "gateway HEALTHCHECK command failed inside the container"
    fi
    if [ -n "${SVC_URL[auth]:-}" ]; then
      s=$(http_status "http://127.0.0.1:$port/auth/jwks.json")
      [ "$s" = 200 ] && pass "gateway routes /auth/jwks.json to auth -> 200" || fail "gateway /auth/jwks.json -> $s"
    fi
  else
    fail "gateway GET /health on 127.0.0.1:$port:"; podman logs --tail 10 "$name" 2>&1 | sed 's/^/    /'
  fi
fi

# Every running container must stop on SIGTERM well before podman's 10 s kill.
for name in "${CONTAINERS[@]}"; do
  [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || continue
  start=$(date +%s%N)
  podman stop -t 10 "$name" >/dev/null 2>&1
  ms=$((($(date +%s%N) - start) / 1000000))
  code=$(podman inspect --format '{{.State.ExitCode}}' "$name" 2>/dev/null)
  if [ "$ms" -lt 9000 ]; then
    pass "${name%-$$} stops on SIGTERM in ${ms} ms (exit $code)"
  else
    fail "${name%-$$} needed ${ms} ms to stop (SIGTERM not handled?)"
  fi
done

echo
if [ "$fails" -eq 0 ]; then
  echo "image-check: all checks passed (${BUILT[*]})"
  exit 0
fi
echo "image-check: $fails check(s) failed"
exit 1
