#!/usr/bin/env bash
# The container image anchorage:<version> that packaging/dist.sh built: size under 40 MB,
# a non-root user, the HEALTHCHECK, entrypoint and port; then `migrate up` and `serve`
# against the private Postgres (--network host), until docker reports it healthy and
# `anchorage healthcheck` passes inside it. Run by tests/packaging/run.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$here/alpine.sh"
source "$here/postgres.sh"
need docker openssl
need_env DOCKER_HOST PG_PORT PG_BIN

version=$("$repo/dist/anchorage" --version | awk '{print $2}')
image="anchorage:$version"
name="anchorage-image-test-$$"
secrets=$(mktemp -d)
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$secrets"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

expect "image: Dockerfile builds on the base tests/packaging/alpine.sh makes" \
  "$(awk '$1 == "FROM" {print $2; exit}' "$repo/packaging/docker/Dockerfile")" "$alpine_image"
check "image: $image exists" docker image inspect "$image"
inspect() { docker image inspect --format "$1" "$image"; }
size=$(inspect '{{.Size}}')
[ "$size" -lt 40000000 ] || fail "image: size" "$size bytes, not under 40 MB"
ok "image: $((size / 1000000)).$((size / 100000 % 10)) MB ($size bytes, under 40 MB)"
user=$(inspect '{{.Config.User}}')
[[ -n "$user" && ! "$user" =~ ^(root|0)(:.*)?$ ]] || fail "image: Config.User" "'$user' is root"
ok "image: Config.User is $user"
expect "image: HEALTHCHECK" "$(inspect '{{json .Config.Healthcheck.Test}}')" '["CMD","anchorage","healthcheck"]'
expect "image: entrypoint, command and port" \
  "$(inspect '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}}')" \
  '["anchorage"] ["serve"] {"8080/tcp":{}}'
expect "image: anchorage --version" "$(docker run --rm --network none "$image" --version)" \
  "$("$repo/dist/anchorage" --version)"
check "image: no curl or wget" \
  docker run --rm --network none --entrypoint /bin/sh "$image" -c '! command -v curl && ! command -v wget'

port=$(free_port)
env=()
while read -r var; do env+=(--env "$var"); done < <(app_env "$port")
pg_fresh_db
check "image: migrate up" docker run --rm --network host "${env[@]}" "$image" migrate up
# The signing key as a read-only file owned by the image's user (as a secret would be).
openssl rand -base64 48 >"$secrets/jwt.key"
chown "$user" "$secrets/jwt.key" && chmod 0400 "$secrets/jwt.key"
docker run -d --name "$name" --network host "${env[@]}" \
  --env 'ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS=[{"id":"1","path":"/run/secrets/jwt.key","primary":true}]' \
  --volume "$secrets/jwt.key:/run/secrets/jwt.key:ro" --health-interval 2s --health-start-period 0s \
  "$image" >/dev/null || fail "image: serve" "docker run failed"
health() { docker inspect --format '{{.State.Health.Status}}' "$name"; }
healthy() { [ "$(health)" = healthy ]; }
wait_for 90 healthy \
  || fail "image: health" "status $(health); log: $(docker logs --tail 5 "$name" 2>&1)"
ok "image: docker reports the serving container healthy"
check "image: anchorage healthcheck inside the container" docker exec "$name" anchorage healthcheck
uid=$(docker exec "$name" id -u)
[ "$uid" != 0 ] || fail "image: user" "the server runs as root"
ok "image: the server runs as uid $uid"
docker stop --time 45 "$name" >/dev/null
expect "image: serve exits 0 on docker stop" "$(docker inspect --format '{{.State.ExitCode}}' "$name")" 0
