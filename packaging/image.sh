#!/usr/bin/env bash
# Builds the container image anchorage:<version> from dist/anchorage and
# packaging/docker/Dockerfile; packaging/dist.sh calls it last. Needs a Docker daemon
# (DOCKER_HOST, or the default socket) that has, or can pull, the pinned Alpine base.
# tests/packaging/run.sh starts a private daemon and makes that base offline. Stops with
# an error naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "error: $*" >&2
  exit 1
}

[ -x dist/anchorage ] || die "dist/anchorage is missing: packaging/dist.sh builds it."
command -v docker >/dev/null 2>&1 || die "no docker command (Debian: apt-get install docker.io)."
docker version >/dev/null 2>&1 \
  || die "no Docker daemon answers at ${DOCKER_HOST:-the default socket}: start dockerd, or run bash tests/packaging/run.sh, which starts its own."
base=$(awk '$1 == "FROM" {print $2; exit}' packaging/docker/Dockerfile)
if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
  die "the base image $base is not in the daemon and cannot be pulled; tests/packaging/alpine.sh makes it offline (bash tests/packaging/run.sh does)."
fi

read -r _ version _ commit < <(dist/anchorage --version | tr -d '()')
image="anchorage:$version"
# The context holds only the binary and the Dockerfile. The legacy builder works with
# a daemon that has no bridge network; --network none: the build downloads nothing.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp dist/anchorage packaging/docker/Dockerfile "$context/"
DOCKER_BUILDKIT=0 docker build --quiet --network none --tag "$image" \
  --label "org.opencontainers.image.title=anchorage" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$commit" \
  --label "org.opencontainers.image.licenses=GPL-3.0-or-later" \
  "$context" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$image")
echo "image $image: $((size / 1000000)) MB ($size bytes)"
