# shellcheck shell=bash
# Sourced by run.sh: a private PostgreSQL cluster in a temporary directory for `migrate up`
# and `serve` from the installed packages and the image (the cargo tests keep their own).
# The roles are the packaged config's: anchorage_owner owns database anchorage and runs
# migrations; anchorage_app, the server's, owns nothing (serve refuses an owner role).

pg_start() {
  PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
  export PG_BIN
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] \
    || fail "prerequisite" "PostgreSQL server binaries (/usr/lib/postgresql/*/bin; packaging/prereqs.sh installs them)"
  getent passwd postgres >/dev/null || fail "prerequisite" "no postgres user (Debian's postgresql package creates it)"
  pg_dir=$(mktemp -d /tmp/anchorage-pkg-pg.XXXXXX)
  chown postgres: "$pg_dir"
  PG_PORT=$(free_port)
  export PG_PORT
  # Postgres refuses to run as root: the postgres user runs it, on loopback only.
  runuser -u postgres -- "$PG_BIN/initdb" -D "$pg_dir/data" -A trust -U postgres >"$pg_dir/initdb.log" 2>&1 \
    || fail "postgres" "initdb: $(tail -n 3 "$pg_dir/initdb.log")"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null 9>&- \
    || fail "postgres" "pg_ctl start: $(tail -n 3 "$pg_dir/server.log")"
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q <<'SQL' >/dev/null \
    || fail "postgres" "creating the roles"
CREATE ROLE anchorage_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE anchorage_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
SQL
  ok "private PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}

# pg_fresh_db: drops and recreates database anchorage, so each install migrates from empty.
pg_fresh_db() {
  PGOPTIONS='-c client_min_messages=warning' \
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q \
    -c 'DROP DATABASE IF EXISTS anchorage WITH (FORCE)' \
    -c 'CREATE DATABASE anchorage OWNER anchorage_owner' >/dev/null
}

# app_env LISTEN_PORT: what points the packaged config (it names 127.0.0.1:5432) at this
# cluster and at free ports, one NAME=value a line. No Kubo runs here: /v1/health
# answers without one.
app_env() {
  echo "ANCHORAGE_POSTGRES__DSN=postgres://anchorage_app@127.0.0.1:$PG_PORT/anchorage"
  echo "ANCHORAGE_POSTGRES__MIGRATION_DSN=postgres://anchorage_owner@127.0.0.1:$PG_PORT/anchorage"
  echo "ANCHORAGE_SERVER__LISTEN=127.0.0.1:$1"
  echo "ANCHORAGE_IPFS__RPC=http://127.0.0.1:$(free_port)"
}

pg_stop() {
  [ -n "${pg_dir:-}" ] || return 0
  local dir=$pg_dir
  pg_dir=""
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf --one-file-system "$dir"
}
