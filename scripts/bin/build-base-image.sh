#!/usr/bin/env bash
# Build a local Node.js base image for podman on a machine that cannot reach any image
# registry: debootstrap a minimal Debian, add ca-certificates + tini, copy in this machine's
# Node.js and npm, create the `node` user (uid 1000) and `podman import` the result.
#
# The image is what docker/Dockerfile expects from its NODE_IMAGE build argument:
#   podman build --build-arg NODE_IMAGE=localhost/scs-node-base:<node version> ...
#
# Idempotent: does nothing but print the settings when the image already exists
# (SCS_BASE_REBUILD=1 forces a rebuild).
#
# Settings (environment, all optional):
#   SCS_BASE_IMAGE       image name          (default localhost/scs-node-base:<host node version>)
#   SCS_DEBIAN_SUITE     Debian suite        (default: this machine's codename, else bookworm)
#   SCS_DEBIAN_MIRROR    Debian mirror URL   (default: the one apt on this machine already uses)
#   SCS_PODMAN_CONF_DIR  where containers.conf is written (default ${TMPDIR:-/tmp}/scs-podman)
#   SCS_BASE_REBUILD=1   rebuild even if the image exists
#   SCS_BASE_NPM         an npm package spec (e.g. npm@10) to put in the image instead of
#                        the host's npm, fetched with `npm pack`; the tag then gets -npm<ver>
#
# Prints on stdout only two lines to run (or `eval "$(scripts/bin/build-base-image.sh)"`):
#   export SCS_BASE_IMAGE=<image>      export CONTAINERS_CONF=<containers.conf>
set -euo pipefail

log() { printf '[build-base-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and rootful podman need it)"

# ---------------------------------------------------------------- host node + npm
NODE_CMD=$(command -v node) || die "node is not on PATH"
NODE_BIN=$(readlink -f "$NODE_CMD")
NODE_VERSION=$("$NODE_BIN" -p 'process.versions.node')
NPM_CMD=$(command -v npm) || die "npm is not on PATH"
# npm's bin is <npm package>/bin/npm-cli.js (possibly behind symlinks)
NPM_PKG_DIR=$(dirname "$(dirname "$(readlink -f "$NPM_CMD")")")
[ -f "$NPM_PKG_DIR/package.json" ] && [ -f "$NPM_PKG_DIR/bin/npm-cli.js" ] \
  || die "cannot locate npm's package directory (got $NPM_PKG_DIR)"

NPM_SPEC=${SCS_BASE_NPM:-}
TAG=$NODE_VERSION
if [ -n "$NPM_SPEC" ]; then
  NPM_SPEC_VERSION=$(npm view "$NPM_SPEC" version 2>/dev/null | awk '{ v = $NF } END { gsub("\047", "", v); print v }')
  [ -n "$NPM_SPEC_VERSION" ] || die "cannot resolve SCS_BASE_NPM=$NPM_SPEC"
  TAG=$NODE_VERSION-npm$NPM_SPEC_VERSION
fi
BASE_IMAGE=${SCS_BASE_IMAGE:-localhost/scs-node-base:$TAG}
CONF_DIR=${SCS_PODMAN_CONF_DIR:-${TMPDIR:-/tmp}/scs-podman}
CONF_FILE=$CONF_DIR/containers.conf

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v podman >/dev/null 2>&1 || need_pkgs+=(podman)
command -v runc >/dev/null 2>&1 || need_pkgs+=(runc)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
# podman's --init / init=true bind-mounts this binary into the container as PID 1
[ "$(dpkg-query -W -f='${Status}' catatonit 2>/dev/null)" = "install ok installed" ] || need_pkgs+=(catatonit)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${need_pkgs[*]} and apt-get is not available"
  log "installing ${need_pkgs[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ---------------------------------------------------------------- containers.conf
# crun refuses this kind of kernel's hybrid cgroups and the default ulimits are not
# permitted in these sandboxes; init=true gives every container an init as PID 1.
mkdir -p "$CONF_DIR"
cat >"$CONF_FILE" <<'EOF'
# Written by scripts/bin/build-base-image.sh. Use with: export CONTAINERS_CONF=<this file>
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
init = true

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$CONF_FILE

if [ "${SCS_BASE_REBUILD:-0}" != 1 ] && podman image exists "$BASE_IMAGE"; then
  log "$BASE_IMAGE already exists; nothing to build (SCS_BASE_REBUILD=1 to rebuild)"
  log "run these before using podman by hand:"
  echo "export SCS_BASE_IMAGE=$BASE_IMAGE"
  echo "export CONTAINERS_CONF=$CONF_FILE"
  exit 0
fi

# ---------------------------------------------------------------- Debian mirror
# shellcheck disable=SC1091
HOST_CODENAME=$( (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true)
SUITE=${SCS_DEBIAN_SUITE:-${HOST_CODENAME:-bookworm}}

# The mirror apt already uses for the plain suite (not -security/-updates): ask apt itself
# (it reads /etc/apt/sources.list and sources.list.d/*.list|*.sources, one-line and deb822),
# and parse the files ourselves if this apt is too old for `indextargets`.
find_mirror() {
  local m
  m=$(apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE) $(TARGET_OF)' 2>/dev/null \
      | awk -v s="$SUITE" '$2 == s && $3 == "deb" { print $1; exit }') || true
  if [ -n "$m" ]; then echo "$m"; return; fi
  local f files=()
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  awk -v s="$SUITE" '
    FNR == 1 { if (NR > 1 && check()) exit; types = uris = suites = ""; enabled = 1 }
    /^[[:space:]]*#/ { next }
    FILENAME ~ /\.list$/ || FILENAME ~ /sources\.list$/ {
      # deb [opts] URI suite components...
      if ($1 != "deb") next
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == s) { print $i; exit }
      next
    }
    # deb822 stanzas, separated by blank lines
    /^[[:space:]]*$/ { if (check()) exit; types = uris = suites = ""; enabled = 1; next }
    tolower($1) == "types:"   { types = $0 }
    tolower($1) == "uris:"    { uris = $2 }
    tolower($1) == "suites:"  { suites = " " $0 " " }
    tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
    function check() {
      if (enabled && types ~ /[[:space:]]deb([[:space:]]|$)/ && uris != "" && index(suites, " " s " ")) { print uris; done = 1; return 1 }
      return 0
    }
    END { if (!done) check() }
  ' "${files[@]}" 2>/dev/null | head -n1
}
MIRROR=${SCS_DEBIAN_MIRROR:-$(find_mirror)}
[ -n "$MIRROR" ] || die "no Debian mirror for '$SUITE' found in apt's sources; set SCS_DEBIAN_MIRROR"

# ---------------------------------------------------------------- rootfs
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scs-base.XXXXXX")
cleanup() {
  # debootstrap may leave /proc or /sys mounted inside the rootfs after a failure
  for m in proc sys dev/pts dev; do
    mountpoint -q "$WORK/rootfs/$m" 2>/dev/null && umount -l "$WORK/rootfs/$m" || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
ROOTFS=$WORK/rootfs

log "debootstrap $SUITE (minbase) from $MIRROR"
debootstrap --variant=minbase --include=ca-certificates,tini "$SUITE" "$ROOTFS" "$MIRROR" \
  >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

install -D -m 0755 "$NODE_BIN" "$ROOTFS/usr/local/bin/node"
mkdir -p "$ROOTFS/usr/local/lib/node_modules/npm"
if [ -n "$NPM_SPEC" ]; then
  log "adding node $NODE_VERSION ($NODE_BIN) and npm $NPM_SPEC_VERSION (npm pack $NPM_SPEC)"
  tgz=$(cd "$WORK" && npm pack --silent "npm@$NPM_SPEC_VERSION" | tail -n1)
  tar -xzf "$WORK/$tgz" -C "$ROOTFS/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
else
  log "adding node $NODE_VERSION ($NODE_BIN) and npm $("$NODE_BIN" "$NPM_PKG_DIR/bin/npm-cli.js" -v 2>/dev/null)"
  cp -a "$NPM_PKG_DIR/." "$ROOTFS/usr/local/lib/node_modules/npm/"
fi
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"

# the copied binary must find every shared library it links in the new root
if chroot "$ROOTFS" /usr/bin/ldd /usr/local/bin/node 2>&1 | grep -q 'not found'; then
  chroot "$ROOTFS" /usr/bin/ldd /usr/local/bin/node >&2 || true
  die "the host's node needs libraries that minbase lacks"
fi

# Trust what the host trusts: certificates added locally (e.g. the CA of a TLS-intercepting
# egress proxy) go into the image's store, and npm uses the system store, so that `npm ci`
# in the build stage reaches the registry the way the host's npm does.
if [ -d /usr/local/share/ca-certificates ] && [ -n "$(find /usr/local/share/ca-certificates -name '*.crt' -print -quit)" ]; then
  log "adding the host's local CA certificates ($(find /usr/local/share/ca-certificates -name '*.crt' | wc -l))"
  cp -a /usr/local/share/ca-certificates/. "$ROOTFS/usr/local/share/ca-certificates/"
  chroot "$ROOTFS" update-ca-certificates >/dev/null 2>&1
fi
mkdir -p "$ROOTFS/usr/local/etc"
echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >"$ROOTFS/usr/local/etc/npmrc"

log "creating user node (uid 1000)"
chroot "$ROOTFS" groupadd --gid 1000 node
chroot "$ROOTFS" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# smoke test inside the rootfs before importing
chroot "$ROOTFS" /usr/local/bin/node -e 'require("node:crypto").randomUUID()' \
  || die "node does not run inside the new root"
chroot "$ROOTFS" /usr/local/bin/npm -v >/dev/null || die "npm does not run inside the new root"

# slim: apt caches, docs, man pages, logs
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.npm

log "importing as $BASE_IMAGE"
OLD_ID=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
tar --numeric-owner -C "$ROOTFS" -cf - . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  --quiet - "$BASE_IMAGE" >/dev/null

podman image exists "$BASE_IMAGE" || die "import did not produce $BASE_IMAGE"
NEW_ID=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
  podman rmi "$OLD_ID" >/dev/null 2>&1 || true   # the previous build, now untagged
fi
log "built $BASE_IMAGE ($(podman image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes)"
log "run these before using podman by hand:"
echo "export SCS_BASE_IMAGE=$BASE_IMAGE"
echo "export CONTAINERS_CONF=$CONF_FILE"
