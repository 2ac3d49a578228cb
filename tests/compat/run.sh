#!/usr/bin/env bash
# Schema compatibility across one version (docs/development.md, "Schema changes"): the
# binary of the last commit before the newest migration serves correctly against the
# migrated schema while a node of this commit runs beside it. The old binary is built
# once per commit in a git worktree (sharing the cargo target dir) and cached under
# ~/.cache/anchorage/compat/<commit>. Both nodes share one private Postgres; each has its
# own real Kubo core (the dev shim). Run by tests/run.sh after the cargo tests.
set -euo pipefail
source "$(dirname "$0")/../packaging/lib.sh"
source "$here/postgres.sh"
cd "$repo"
need git cargo python3 openssl curl
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anchorage/target}"

work=$(mktemp -d /tmp/anchorage-compat.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# This commit's binary first: building the old one replaces target/debug/anchorage.
cargo build --locked --quiet --bin anchorage
new_bin="$work/anchorage-new"
cp "$CARGO_TARGET_DIR/debug/anchorage" "$new_bin"

newest=$(find migrations -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | tail -n 1)
introduced=$(git log -1 --format=%H -- "migrations/$newest")
[ -n "$introduced" ] || fail "compat" "migrations/$newest is not committed yet"
old=$(git rev-parse "$introduced^")
old_bin="$cache/compat/$old/anchorage"
if [ ! -x "$old_bin" ]; then
  tree="$work/old-tree"
  git worktree add --detach --quiet "$tree" "$old"
  (cd "$tree" && cargo build --locked --quiet --bin anchorage) \
    || { git worktree remove --force "$tree"; fail "compat" "building $old failed"; }
  mkdir -p "$(dirname "$old_bin")"
  cp "$CARGO_TARGET_DIR/debug/anchorage" "$old_bin.tmp" && mv "$old_bin.tmp" "$old_bin"
  git worktree remove --force "$tree"
  find "$cache/compat" -mindepth 1 -maxdepth 1 -type d ! -name "$old" -exec rm -rf {} +
fi
ok "old binary: $("$old_bin" --version) (before $newest); new: $("$new_bin" --version)"

pg_start
pg_fresh_db
openssl rand -base64 48 >"$work/jwt.key"
chmod 0400 "$work/jwt.key"
common=(
  "ANCHORAGE_POSTGRES__DSN=postgres://anchorage_app@127.0.0.1:$PG_PORT/anchorage"
  "ANCHORAGE_POSTGRES__MIGRATION_DSN=postgres://anchorage_owner@127.0.0.1:$PG_PORT/anchorage"
  "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS=[{\"id\":\"1\",\"path\":\"$work/jwt.key\",\"primary\":true}]"
  "ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS=true"
  "ANCHORAGE_IPFS__RETRY_BASE_DELAY=1s"
)
check "migrate up with the new binary" env "${common[@]}" "$new_bin" migrate up

# node NAME BINARY: a real Kubo core and `serve` as cluster.nodeID NAME; sets node_url
# (not printed: a command substitution's subshell would lose the pids to stop).
node() {
  local name=$1 bin=$2 port kubo
  python3 tools/kubo-shim/kubo_shim.py --repo "$work/$name-repo" --ignore-stdin >"$work/$name-kubo.json" \
    2>"$work/$name-kubo.log" </dev/null &
  pids+=($!)
  wait_for 60 test -s "$work/$name-kubo.json" || fail "$name" "its Kubo did not start: $(tail -n 3 "$work/$name-kubo.log")"
  kubo=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["api"])' "$work/$name-kubo.json")
  port=$(free_port)
  env "${common[@]}" ANCHORAGE_CLUSTER__NODE_ID="$name" ANCHORAGE_IPFS__RPC="$kubo" \
    ANCHORAGE_SERVER__LISTEN="127.0.0.1:$port" "$bin" serve >"$work/$name.log" 2>&1 &
  pids+=($!)
  node_url="http://127.0.0.1:$port"
}
node anchor-old "$old_bin"
old_url=$node_url
node anchor-new "$new_bin"
new_url=$node_url
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/v1/ready")" = 200 ]; }
wait_for 90 ready "$old_url" || fail "old node" "not ready: $(tail -n 5 "$work/anchor-old.log")"
wait_for 90 ready "$new_url" || fail "new node" "not ready: $(tail -n 5 "$work/anchor-new.log")"
ok "the old and the new node serve side by side on the migrated schema"

org=$(env "${common[@]}" "$new_bin" admin org create acme 2>/dev/null | grep -o 'org_[0-9a-z]*' | head -n 1)
token=$(env "${common[@]}" "$new_bin" admin mint-token --role member --org "$org" --ttl 1h 2>/dev/null | tail -n 1)
cid_of() { # NAME: adds fresh bytes to that node's Kubo, prints the CID
  local api
  api=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["api"])' "$work/$1-kubo.json")
  head -c 100000 /dev/urandom >"$work/content"
  curl -sf -X POST -F "file=@$work/content" "$api/api/v0/add" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Hash"])'
}
api() { curl -s -H "Authorization: Bearer $token" "$@"; }
field() { python3 -c 'import json, sys; b = json.load(sys.stdin); print(eval(sys.argv[1], {}, {"b": b}))' "$1"; }

# roundtrip WHO WRITER READER: a pin made through one node is pinned, listed and deleted
# through the other.
roundtrip() {
  local who=$1 writer=$2 reader=$3 cid id origin
  cid=$(cid_of "anchor-$who")
  # Either node may be given the pin: name where the content is.
  origin=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["addrs"][0])' "$work/anchor-$who-kubo.json")
  id=$(api -X POST -H 'Content-Type: application/json' \
    -d "{\"cid\":\"$cid\",\"name\":\"by-$who\",\"origins\":[\"$origin\"]}" \
    "$writer/v1/pins" | field 'b["requestid"]') || fail "POST through the $who node" "no requestid"
  pinned() { [ "$(api "$reader/v1/pins/$id" | field 'b["status"]')" = pinned ]; }
  wait_for 60 pinned || fail "pin by the $who node" "read through the other: $(api "$reader/v1/pins/$id")"
  expect "a pin made through the $who node, listed through the other" \
    "$(api "$reader/v1/pins?name=by-$who" | field '(b["count"], b["results"][0]["requestid"])')" "(1, '$id')"
  expect "deleted through the other node" "$(api -o /dev/null -w '%{http_code}' -X DELETE "$reader/v1/pins/$id")" 202
}
roundtrip old "$old_url" "$new_url"
roundtrip new "$new_url" "$old_url"
for log in anchor-old anchor-new; do
  ! grep -E '"level":"ERROR"|ERROR ' "$work/$log.log" | grep -v 'ipfs' >/dev/null \
    || fail "$log" "logged errors: $(grep -E 'ERROR' "$work/$log.log" | head -n 3)"
done
ok "neither node logged an error"
