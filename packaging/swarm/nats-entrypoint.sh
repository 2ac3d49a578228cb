#!/bin/sh
# Entrypoint of the nats-N services (docker-compose.nats.yml): starts nats-server with
# nats.conf, its arguments appended (--server_name nats-N). The auth token comes from
# the anchorage_nats_token secret and reaches the server through its environment: never
# its command line (any user of the host can read that with ps), never the service spec.
set -eu
token=$(cat /run/secrets/anchorage_nats_token)
case $token in
  "" | *[\"\\[:space:]]*)
    echo "anchorage_nats_token must be one word without quotes or backslashes (openssl rand -hex 32)" >&2
    exit 1
    ;;
esac
# nats-server parses $NATS_TOKEN as a config value: quoted, it is a string whatever it holds.
NATS_TOKEN="\"$token\""
export NATS_TOKEN
exec nats-server --config /etc/nats/anchorage.conf "$@"
