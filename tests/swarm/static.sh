#!/usr/bin/env bash
# Static checks of the Swarm stack (packaging/swarm): the compose file is valid for
# `docker stack deploy` (docker-compose's own schema; configs are swarm-only and only
# warned about) and nginx accepts the load balancer's config. Run by tests/run.sh.
set -euo pipefail
source "$(dirname "$0")/../packaging/lib.sh"
need docker-compose nginx
swarm="$repo/packaging/swarm"

check "swarm: docker-compose config -q" \
  env ANCHORAGE_DOMAIN=anchor.example.com docker-compose -f "$swarm/docker-compose.yml" config -q

# nginx -t as an unprivileged run would: pid and logs in a temp dir. The resolver is only
# asked at request time (variables in proxy_pass), so no stack needs to be up.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/tmp/nginx.pid#$work/nginx.pid#" "$swarm/nginx.conf" >"$work/nginx.conf"
check "swarm: nginx -t" nginx -t -c "$work/nginx.conf" -g "error_log $work/error.log;"
