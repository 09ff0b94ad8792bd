#!/usr/bin/env bash
# Stage "Push": each image to its ECR repository (read from the state, so it works right after the
# bootstrap of a new environment), tagged with the commit. Tags are immutable: a tag that is
# already there is skipped (a re-run of the same commit), never pushed again. Deploy builds only.
#   REGISTRY_KIND     ecr (default) | registry (a plain registry, HTTP API v2; the rehearsal)
#   REGISTRY_HOST     replaces the repositories' host (the rehearsal's local registry)
#   REGISTRY_TLS_VERIFY  true (default) | false
source "$(dirname "$0")/lib.sh"
require_deploy "pushing images"
kind=${REGISTRY_KIND:-ecr}
tls=${REGISTRY_TLS_VERIFY:-true}

# image name -> repository URL, from the state (aws_ecr_repository.this["<image>"]).
repos=$(tf show -json | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const walk = (m) => [...(m.resources ?? []), ...(m.child_modules ?? []).flatMap(walk)];
    const all = walk(JSON.parse(s).values?.root_module ?? {});
    for (const r of all.filter((r) => r.type === "aws_ecr_repository" && r.mode === "managed")) console.log(`${r.index} ${r.values.repository_url}`);
  });')
[ -n "$repos" ] || die "the state holds no ECR repository: run scripts/pipeline/bootstrap.sh first"

push_args=()
[ "$tls" = true ] || push_args+=(--tls-verify=false)
logged_in=
for image in $IMAGES; do
  url=$(awk -v i="$image" '$1 == i { print $2 }' <<<"$repos")
  [ -n "$url" ] || die "no ECR repository for image $image (repositories: $(awk '{ printf "%s ", $1 }' <<<"$repos"))"
  host=${REGISTRY_HOST:-${url%%/*}}
  path=${url#*/}
  remote=$host/$path:$IMAGE_TAG
  if [ "$kind" = ecr ]; then
    exists=$(aws ecr describe-images --repository-name "$path" --image-ids "imageTag=$IMAGE_TAG" --query 'length(imageDetails)' --output text 2>/dev/null || echo 0)
  else
    scheme=https; [ "$tls" = true ] || scheme=http
    code=$(curl -s -o /dev/null -w '%{http_code}' -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' \
      "$scheme://$host/v2/$path/manifests/$IMAGE_TAG")
    case $code in 200) exists=1 ;; 404) exists=0 ;; *) die "registry $host answered $code for $path:$IMAGE_TAG" ;; esac
  fi
  if [ "$exists" != 0 ]; then
    log "$remote exists (immutable tag): not pushed again"
    continue
  fi
  if [ "$kind" = ecr ] && [ -z "$logged_in" ]; then
    aws ecr get-login-password | $ENGINE login --username AWS --password-stdin "$host"
    logged_in=$host
  fi
  $ENGINE tag "scs/$image:$IMAGE_TAG" "$remote"
  $ENGINE push "${push_args[@]}" "$remote"
  log "pushed $remote"
done
if [ -n "$logged_in" ]; then $ENGINE logout "$logged_in" || true; fi
