#!/bin/sh
# Runs once, when the postgres service initialises its volume (the official image's
# /docker-entrypoint-initdb.d). Creates the owner role, which runs `migrate up` and owns
# the schema, and the server's role, which `migrate up` grants data access only (it
# must own nothing, or row-level security would not bind it). Both log in with the
# anchorage_postgres_password secret.
set -eu
password=$(cat /run/secrets/anchorage_postgres_password)
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v pw="$password" <<'SQL'
CREATE ROLE anchorage_owner LOGIN PASSWORD :'pw';
CREATE ROLE anchorage_app LOGIN PASSWORD :'pw';
CREATE DATABASE anchorage OWNER anchorage_owner;
SQL
