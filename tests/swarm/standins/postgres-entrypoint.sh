#!/bin/sh
# Stand-in for the official postgres image's contract, as the stack uses it: on an empty
# volume, initdb with the superuser password from POSTGRES_PASSWORD_FILE, run
# /docker-entrypoint-initdb.d/*.sh against a server listening only on its socket, then
# serve on every interface with SCRAM passwords. Runs as root, drops to postgres.
set -eu
data=/var/lib/postgresql/data
bin=/usr/lib/postgresql/15/bin
install -d -o postgres -g postgres -m 0700 "$data"
install -d -o postgres -g postgres /run/postgresql
if [ ! -s "$data/PG_VERSION" ]; then
  pwfile=$(mktemp)
  cat "$POSTGRES_PASSWORD_FILE" >"$pwfile"
  chown postgres "$pwfile"
  runuser -u postgres -- "$bin/initdb" -D "$data" -U "${POSTGRES_USER:-postgres}" \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$data/pg_hba.conf"
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
  for script in /docker-entrypoint-initdb.d/*.sh; do
    [ -e "$script" ] || continue
    echo "running $script"
    PGHOST=/run/postgresql sh "$script"
  done
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
exec runuser -u postgres -- "$bin/postgres" -D "$data" -c listen_addresses='*'
