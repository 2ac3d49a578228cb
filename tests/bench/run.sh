#!/usr/bin/env bash
# Load benchmark of the Pinning API against the raw Postgres ceiling. Not a test: it
# prints a report (and writes it to $CARGO_TARGET_DIR/bench/report-<timestamp>.md).
#
#   bash tests/bench/run.sh [--pins N] [--duration 20s] [--connections 32] [--no-extra]
#                           [--dispatch 5000] [--backend nats]
#
# --backend nats: after the Postgres backend's dispatch phase, restart the stack with
# `cluster.backend: nats` (a local nats-server) and run the same phase again; the report
# puts both backends side by side.
#
# Starts a private `anchorage dev` stack (its own Postgres, IPFS node, demo org) in a
# temp dir, loads N pins into the demo org with SQL, drives the service with wrk and the
# same database with pgbench, and stops everything on exit. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
bench="$repo/tests/bench"

pins=100000
duration=20s
connections=32
threads=2   # wrk -t / pgbench -j: fixed, so runs on different days compare
extra=1     # the informational "(as server)" pgbench runs
dispatch=5000  # pins for the dispatch-latency phase (0 skips it)
compare_nats=0 # --backend nats: the dispatch phase on both backends

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --pins) pins=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --no-extra) extra=0; shift ;;
    --dispatch) dispatch=${2:?}; shift 2 ;;
    --backend)
      case ${2:?} in
        nats) compare_nats=1 ;;
        postgres) compare_nats=0 ;;
        *) echo "--backend takes postgres or nats" >&2; exit 2 ;;
      esac
      shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $pins =~ ^[0-9]+$ ]] && ((pins >= 1000)) || { echo "--pins must be a number >= 1000" >&2; exit 2; }
[[ $connections =~ ^[0-9]+$ ]] && ((connections >= threads)) || { echo "--connections must be a number >= $threads" >&2; exit 2; }
# wrk takes 20s / 2m; pgbench wants whole seconds.
case $duration in
  *[0-9]s) secs=${duration%s} ;;
  *[0-9]m) secs=$((${duration%m} * 60)) ;;
  *[0-9]) secs=$duration ;;
  *) secs= ;;
esac
[[ $secs =~ ^[0-9]+$ ]] && ((secs >= 1)) || { echo "--duration must look like 20s, 2m or 20" >&2; exit 2; }

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '!!! %s\n' "$*" >&2; exit 1; }
# set -e exits quietly; say where.
trap 'printf "!!! failed (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR
started_at=$(date +%s)

# --- 1. prerequisites -------------------------------------------------------------------
find_pgbench() {
  command -v pgbench 2>/dev/null || compgen -G '/usr/lib/postgresql/*/bin/pgbench' | sort -V | tail -n 1
}
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
[ -n "$(find_pgbench)" ] || missing+=(postgresql-contrib)
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
pgbench=$(find_pgbench)
[ -n "$pgbench" ] || die "pgbench not found after installing postgresql-contrib"
# The dev stack's own needs: PostgreSQL server, python3, kubo-python.
bash packaging/prereqs.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anchorage/target}"
# BENCH_BINARY measures another build, e.g. dist/anchorage (static musl) against
# the glibc release build.
if [ -n "${BENCH_BINARY:-}" ]; then
  binary=$(realpath "$BENCH_BINARY")
  [ -x "$binary" ] || die "BENCH_BINARY=$BENCH_BINARY is not an executable"
  log "measuring $binary ($("$binary" --version))"
else
  log "building anchorage (release)"
  cargo build --release --locked -j "${BENCH_BUILD_JOBS:-2}" --bin anchorage
  binary="$CARGO_TARGET_DIR/release/anchorage"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out_dir="$CARGO_TARGET_DIR/bench"
raw="$out_dir/raw-$stamp"   # wrk/pgbench output, top snapshots, server log
mkdir -p "$raw"
report="$out_dir/report-$stamp.md"

# --- 2. a private stack -----------------------------------------------------------------
work=$(mktemp -d /tmp/anchorage-bench.XXXXXX)
stack="$work/stack"
server_pid=
client_pid=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    log "stopping the stack"
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null || true
  fi
  # `dev` stops its Postgres on SIGTERM; if it died first, stop the cluster ourselves.
  local pm="$stack/postgres/postmaster.pid"
  if [ -f "$pm" ]; then
    local pg_pid
    pg_pid=$(head -n 1 "$pm")
    if [ -r "/proc/$pg_pid/cmdline" ] && grep -q postgres "/proc/$pg_pid/cmdline"; then
      kill -INT "$pg_pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  [ -f "$work/server.log" ] && cp "$work/server.log" "$raw/server.log" 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_stack() { # BACKEND
  log "starting anchorage dev --backend $1 on 127.0.0.1:$port (data in $work)"
  # RUST_LOG=warn: per-request logging would otherwise be part of what we measure.
  RUST_LOG=warn "$binary" dev --data-dir "$stack" --listen "127.0.0.1:$port" --backend "$1" \
    >>"$work/server.log" 2>&1 &
  server_pid=$!
}
stop_stack() {
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  server_pid=
}
start_stack postgres

wait_for() { # URL SECONDS: until it answers 200 (and the server still runs)
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$work/server.log" >&2; die "anchorage dev exited"; }
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
base="http://127.0.0.1:$port"
wait_for "$base/v1/health" 300 || { tail -n 30 "$work/server.log" >&2; die "no /v1/health after 300 s"; }
wait_for "$base/v1/ready" 60 || log "warning: /v1/ready is not 200 (POST may be refused)"

set -a
# shellcheck disable=SC1091
. "$stack/dev.env"
set +a
pg_port=$(cat "$stack/postgres.port")
psql_as() { # ROLE ARGS...: psql on the stack's database over TCP (trust auth)
  local role=$1; shift
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U "$role" -d anchorage "$@"
}
sql() { psql_as postgres -At -c "$1"; }

# --- 3. load N pins ---------------------------------------------------------------------
log "loading $pins pins into the demo org"
load_start=$SECONDS
load_base=$(sql "SELECT date_trunc('milliseconds', now())")
chunk=100000
for ((first = 1; first <= pins; first += chunk)); do
  last=$((first + chunk - 1 < pins ? first + chunk - 1 : pins))
  psql_as postgres -v first="$first" -v last="$last" -v base="$load_base" -f "$bench/load.sql"
  ((pins <= chunk)) || log "  $last / $pins"
done
psql_as postgres -f "$bench/load_finish.sql"
log "loaded in $((SECONDS - load_start)) s"
org=$(sql "SELECT id FROM orgs WHERE name = 'demo'")
scratch=$(sql "SELECT id FROM orgs WHERE name = 'bench-scratch'")
queued=$(sql "SELECT count(*) FROM pins WHERE org_id = '$org' AND status = 'queued'")
pinned=$(sql "SELECT count(*) FROM pins WHERE org_id = '$org' AND status = 'pinned'")
# Pin i was created at base_ms - i (see load.sql); pgbench rebuilds ids from that.
base_ms=$(sql "SELECT (extract(epoch FROM max(created)) * 1000)::bigint + 1 FROM pins WHERE org_id = '$org'")
psql_as postgres -At -v org="$org" -f "$bench/request_ids.sql" >"$work/ids.txt"
sample_cid=$(sql "SELECT cid FROM pins WHERE org_id = '$org' ORDER BY created DESC LIMIT 1")

# --- smoke checks: every request shape once, before anything is timed -------------------
auth=(-H "Authorization: Bearer $ANCHORAGE_TOKEN")
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
http_expect() { # CODE URL [curl args]: prints the body, dies unless the status is CODE
  local code=$1 url=$2 got; shift 2
  got=$(curl -sS -o "$work/body" -w '%{http_code}' "${auth[@]}" "$@" "$url")
  [ "$got" = "$code" ] || die "$url answered $got, expected $code: $(head -c 300 "$work/body")"
  cat "$work/body"
}
count=$(http_expect 200 "$base/v1/pins?limit=10" | json_field count)
[ "$count" = "$pinned" ] || die "GET /v1/pins count is $count, expected $pinned pinned"
http_expect 200 "$base/v1/pins/$(head -n 1 "$work/ids.txt")" >/dev/null
count=$(http_expect 200 "$base/v1/pins?cid=$sample_cid" | json_field count)
[ "$count" = 1 ] || die "GET /v1/pins?cid=$sample_cid found $count pins, expected 1 (load.sql CIDs not canonical?)"
name_query="name=invoice&match=ipartial"
count=$(http_expect 200 "$base/v1/pins?$name_query&limit=10" | json_field count)
((count > 0)) || die "the name search ($name_query) finds nothing"
# POST is refused (503) until the node's IPFS address is known; give it a moment.
for attempt in $(seq 1 60); do
  code=$(curl -sS -o "$work/body" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"cid":"bafkqahycaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaqqqqqqqqqqqqqqqq","name":"smoke"}' "$base/v1/pins")
  [ "$code" = 202 ] && break
  ((attempt < 60)) || die "POST /v1/pins answered $code: $(head -c 300 "$work/body")"
  sleep 1
done

export BENCH_LUA_DIR="$bench/lua" BENCH_IDS_FILE="$work/ids.txt"
# One second of the POST script on one connection proves its CIDs are accepted.
BENCH_RUN_ID=1 wrk -t1 -c1 -d1s -s "$bench/lua/post_pins.lua" "$base/v1/pins" >"$work/smoke.out" 2>&1
grep -q '^BENCH .* non2xx=0 socket_errors=0 ' "$work/smoke.out" \
  || die "POST smoke run with Lua CIDs failed: $(cat "$work/smoke.out")"
log "smoke checks passed (demo org: $pinned pinned, $queued queued; $(wc -l <"$work/ids.txt") request ids)"

# --- measurement helpers ----------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)
cpus=$(nproc)
proc_ticks() { # PID: utime+stime of the process (all threads); empty if gone
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) } # drop "pid (comm) ": utime/stime are then fields 12/13
  awk '{print $12 + $13}' <<<"$stat"
}
running() { # PID: alive and not a zombie
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
pg_ticks() { # the whole cluster: postmaster + its reaped children + live backends
  local pm stat total child
  pm=$(head -n 1 "$stack/postgres/postmaster.pid")
  stat=$(cat "/proc/$pm/stat")
  stat=${stat##*) } # fields 12-15: utime stime cutime cstime
  total=$(awk '{print $12 + $13 + $14 + $15}' <<<"$stat")
  for child in $(ps -o pid= --ppid "$pm"); do
    total=$((total + $(proc_ticks "$child") + 0))
  done
  echo "$total"
}
ipfs_ticks() { # the server's children: the local IPFS node (kubo_shim.py) `dev` started
  local total=0 child
  for child in $(ps -o pid= --ppid "$server_pid"); do
    total=$((total + $(proc_ticks "$child") + 0))
  done
  echo "$total"
}
machine_ticks() { # "busy total" jiffies over all CPUs
  awk '/^cpu /{t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat
}
# The second frame of top (the first averages since boot), first 22 lines. awk reads
# all of top's output: `| head` would SIGPIPE top, which pipefail turns into an exit.
top_snapshot() { top -b -n 2 -d 1 -w 200 | awk '/^top -/ {n++} n == 2 && shown++ < 22'; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# (Parenthesised: in awk, a bare ">" among printf's arguments redirects the output.)
pct() { awk -v d="$1" -v s="$2" -v k="$clk_tck" 'BEGIN {printf "%.0f", (s > 0 ? 100 * d / (k * s) : 0)}'; }

# A run's slow queries can outlive it (the server does not cancel a query whose client
# went away; they run to statement_timeout), so each run first waits until no query is
# active in the database, and notes how long that took.
settle() {
  local waits=0 n
  while :; do
    n=$(sql "SELECT count(*) FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()")
    if ((n == 0)); then
      settled=$((waits / 2)) # whole seconds waited
      return 0
    fi
    if ((waits >= 240)); then
      log "warning: $n queries still active after 120 s; measuring anyway"
      settled="120+"
      return 0
    fi
    sleep 0.5
    waits=$((waits + 1))
  done
}

results="$raw/results.tsv"
printf 'key\tkind\tlabel\trps\tp50_ms\tp99_ms\terrors\terror_detail\terror_sample\tmax_rss_kb\tcpu_server\tcpu_pg\tcpu_ipfs\tcpu_client\tcpu_other\tcpu_busy\tnote\n' >"$results"

# measure KEY KIND LABEL NOTE CMD...: runs one wrk/pgbench command in the background
# and, while it runs, samples the server's RSS and the CPU of server/Postgres/client.
measure() {
  local key=$1 kind=$2 label=$3 note=$4 settled; shift 4
  local out="$raw/$key.out" max_rss=0 rss client=0 c snap=0 t0 rc=0
  local m0 m1 s0 s1 p0 p1 i0 i1 elapsed
  settle
  [ "$settled" = 0 ] || note="waited ${settled}s for earlier queries to finish${note:+; $note}"
  log "$label: $kind run, $duration"
  m0=$(machine_ticks); s0=$(proc_ticks "$server_pid"); p0=$(pg_ticks); i0=$(ipfs_ticks)
  t0=$(date +%s%N)
  "$@" >"$out" 2>&1 &
  client_pid=$!
  while running "$client_pid"; do
    rss=$(rss_kb "$server_pid"); ((rss > max_rss)) && max_rss=$rss
    c=$(proc_ticks "$client_pid"); [ -n "$c" ] && client=$c
    # One top snapshot mid-run.
    if ((!snap && ($(date +%s%N) - t0) / 1000000000 >= secs / 2)); then
      snap=1
      (top_snapshot >"$raw/$key.top") &
    fi
    sleep 0.25
  done
  wait "$client_pid" || rc=$?
  client_pid=
  sleep 0.3 # let the postmaster reap backends that just disconnected
  elapsed=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN {print (b - a) / 1e9}')
  m1=$(machine_ticks); s1=$(proc_ticks "$server_pid"); p1=$(pg_ticks); i1=$(ipfs_ticks)
  local busy total
  busy=$(($(cut -d' ' -f1 <<<"$m1") - $(cut -d' ' -f1 <<<"$m0")))
  total=$(($(cut -d' ' -f2 <<<"$m1") - $(cut -d' ' -f2 <<<"$m0")))
  local cpu_busy cpu_server cpu_pg cpu_client cpu_ipfs cpu_other
  cpu_busy=$(awk -v b="$busy" -v t="$total" 'BEGIN {printf "%.0f", (t > 0 ? 100 * b / t : 0)}')
  cpu_server=$(pct $((s1 - s0)) "$elapsed")
  cpu_pg=$(pct $((p1 - p0)) "$elapsed")
  cpu_client=$(pct "$client" "$elapsed")
  cpu_ipfs=$(pct $((i1 - i0)) "$elapsed")
  # Whatever else ran meanwhile (other builds on a shared box), in the same units.
  cpu_other=$(pct $((busy - (s1 - s0) - (p1 - p0) - (i1 - i0) - client)) "$elapsed")

  local rps p50 p99 errors=0 detail="" sample="" line
  if [ "$kind" = http ]; then
    line=$(grep '^BENCH ' "$out" || true)
    [ -n "$line" ] || { cat "$out" >&2; die "$label: wrk printed no result (exit $rc)"; }
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $line"; }
    rps=$(field rps); p50=$(field p50_ms); p99=$(field p99_ms)
    # No completed request (all slower than the run, or refused): no latency to report.
    if [ "$(field requests)" = 0 ]; then p50=; p99=; fi
    local non2xx sock tmo
    non2xx=$(field non2xx); sock=$(field socket_errors); tmo=$(field timeouts)
    errors=$((non2xx + sock + tmo))
    if ((errors)); then
      detail=$(sed -n 's/^BENCH_CODES //p' "$out")
      ((sock == 0)) || detail="${detail:+$detail, }$sock socket errors"
      ((tmo == 0)) || detail="${detail:+$detail, }$tmo timeouts"
      sample=$(sed -n 's/^BENCH_SAMPLE //p' "$out" | cut -c1-200)
      log "!!! $label: $errors errors ($detail), e.g. $sample"
    fi
  else
    rps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
    [ -n "$rps" ] || { cat "$out" >&2; die "$label: pgbench printed no tps (exit $rc)"; }
    errors=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    errors=${errors:-0}
    ((rc == 0)) || { errors=$((errors + 1)); detail="pgbench exited $rc"; sample=$(grep -m1 -i error "$out" | cut -c1-200); }
    # Per-transaction latencies (µs, third field) from pgbench -l.
    read -r p50 p99 < <(cat "$raw/$key.log".* | awk '{print $3}' | sort -n |
      awk '{v[NR] = $1} END {if (NR) printf "%.3f %.3f\n", v[int(NR * 0.50) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000; else print "nan nan"}')
    rm -f "$raw/$key.log".*
    max_rss=""
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$key" "$kind" "$label" "$rps" "$p50" "$p99" "$errors" "$detail" "$sample" "$max_rss" \
    "$cpu_server" "$cpu_pg" "$cpu_ipfs" "$cpu_client" "$cpu_other" "$cpu_busy" "$note" >>"$results"
}

run_wrk() { # KEY LABEL SCRIPT URL [NOTE]
  measure "$1" http "$2" "${5:-}" env BENCH_RUN_ID="$(date +%s%3N)" \
    wrk -t"$threads" -c"$connections" -d"${secs}s" --timeout 10s --latency -s "$bench/lua/$3" "$4"
}
run_pgbench() { # KEY LABEL SCRIPT ROLE [NOTE]
  measure "$1" pg "$2" "${5:-}" "$pgbench" -n -M prepared -h 127.0.0.1 -p "$pg_port" -U "$4" \
    -c "$connections" -j "$threads" -T "$secs" -l --log-prefix="$raw/$1.log" \
    -D org="$org" -D scratch="$scratch" -D status=pinned -D statuses='{pinned}' -D base_ms="$base_ms" -D n="$pins" \
    -f "$bench/pgbench/$3" anchorage
}

# --- 4./5. the runs ---------------------------------------------------------------------
rss_idle_kb=$(rss_kb "$server_pid")
{
  echo "== before the runs: $(uptime)"
  top_snapshot
} >"$raw/before.top"
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

# Reads first (the POST run adds queued pins), ceilings before the HTTP runs they bound.
run_pgbench pg_list "pg: list count+page (superuser)" list.sql postgres
run_pgbench pg_get "pg: select by id (superuser)" get.sql postgres
if ((extra)); then
  run_pgbench pg_list_page "pg: list page only (superuser)" list_page_only.sql postgres "no count(*)"
  run_pgbench pg_list_tx "pg: list (as server)" list_as_server.sql anchorage "role anchorage, RLS, BEGIN/set_config/COMMIT"
  run_pgbench pg_get_tx "pg: select by id (as server)" get_as_server.sql anchorage "role anchorage, RLS, BEGIN/set_config/COMMIT"
fi
run_wrk list "GET /v1/pins?limit=10" get.lua "$base/v1/pins?limit=10" "bare listing = status pinned ($pinned)"
run_wrk get "GET /v1/pins/{requestid}" get_by_id.lua "$base/v1/pins/" "$(wc -l <"$work/ids.txt") random loaded ids"
# The same reads with a service token (its sub names no user, so no standing check):
# the gap to `get` is what lowering a user's token to their current role costs.
svc_token=$("$binary" --config "$stack/anchorage.yaml" admin mint-token --role member \
  --org "$ANCHORAGE_ORG" --user bench-service --ttl 2h)
ANCHORAGE_TOKEN=$svc_token run_wrk get_svc "GET /v1/pins/{requestid} (service token)" get_by_id.lua \
  "$base/v1/pins/" "sub names no user: no standing check"
run_wrk queued "GET /v1/pins?status=queued&limit=1" get.lua "$base/v1/pins?status=queued&limit=1" "$queued queued"
run_wrk ipartial "GET /v1/pins?name=invoice&match=ipartial" get.lua "$base/v1/pins?$name_query" "all statuses; matches ~10% of the org"
post_before=$(sql "SELECT count(*) FROM pins WHERE org_id = '$org'")
run_wrk post "POST /v1/pins" post_pins.lua "$base/v1/pins"
post_rows=$(($(sql "SELECT count(*) FROM pins WHERE org_id = '$org'") - post_before))
raw_before=$(sql "SELECT count(*) FROM pins WHERE name = 'bench-raw-insert'")
run_pgbench pg_insert "pg: single-row insert (superuser)" insert.sql postgres
raw_rows=$(($(sql "SELECT count(*) FROM pins WHERE name = 'bench-raw-insert'") - raw_before))
if ((extra)); then
  run_pgbench pg_insert_tx "pg: insert + cid_refs (as server)" insert_as_server.sql anchorage
  tx_rows=$(sql "SELECT count(*) FROM pins WHERE name = 'bench-tx-insert'")
fi

# Row counts say what inserts really landed (a tx whose insert lost the ms race is a no-op).
python3 - "$results" post "$post_rows rows written" pg_insert "$raw_rows rows written" \
  ${tx_rows:+pg_insert_tx "$tx_rows rows written (0-row inserts not retried)"} <<'EOF'
import csv, sys
path, pairs = sys.argv[1], sys.argv[2:]
notes = dict(zip(pairs[::2], pairs[1::2]))
with open(path, newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
for r in rows:
    if r["key"] in notes:
        r["note"] = "; ".join(x for x in (r["note"], notes[r["key"]]) if x)
with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=rows[0].keys(), delimiter="\t", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
EOF

# --- 6. the report ----------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=no
[ -z "$(git status --porcelain 2>/dev/null)" ] || dirty=yes
cat >"$raw/meta" <<EOF
started=$(date -u -d "@$started_at" '+%Y-%m-%d %H:%M:%S UTC')
pins=$pins
queued=$queued
connections=$connections
threads=$threads
duration=$duration
commit=$commit
dirty=$dirty
cpus=$cpus
loadavg=$loadavg
rss_idle_kb=$rss_idle_kb
EOF
python3 "$bench/report.py" "$results" "$raw/meta" | tee "$report"
echo
log "report: $report (raw output: $raw)"
log "wall time: $(($(date +%s) - started_at)) s"

# --- 7. pin dispatch and throughput -----------------------------------------------------
# Identity CIDs (their content is inline, so each is locally available). Dispatch latency
# is, per placement, the time from the POST's transaction to a worker taking the job up
# (first_attempt_at - created_at), measured on an idle queue: 200 POSTs one after another.
# Throughput is pins completed per second for a burst of $dispatch POSTs, from the first
# POST to the last pin.
dispatch_phase() { # COUNT CONCURRENCY GAP_MS RUN -> prints the CID prefix of the run
  local out
  out=$(python3 "$bench/dispatch.py" --url "$ANCHORAGE_URL" --token "$ANCHORAGE_TOKEN" \
    --count "$1" --concurrency "$2" --gap-ms "$3" --run "$4")
  log "$out"
  local prefix=${out##*prefix=}
  local deadline=$(($(date +%s) + 900)) left
  while :; do
    left=$(sql "SELECT count(*) FROM placements WHERE cid LIKE '$prefix%' AND state <> 'pinned'")
    [ "$left" -eq 0 ] && break
    (($(date +%s) < deadline)) || die "dispatch: $left placements still not pinned after 15 minutes"
    sleep 1
  done
  echo "$prefix"
}
dispatch_figures() { # BACKEND IDLE_PREFIX BURST_PREFIX: one row of the side-by-side table
  sql "SELECT format('| %s | %s | %s | %s | %s | %s | %s |', '$1',
         round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_attempt_at - created_at)) * 1000)::numeric, 1),
         round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM first_attempt_at - created_at)) * 1000)::numeric, 1),
         round((max(extract(epoch FROM first_attempt_at - created_at)) * 1000)::numeric, 1),
         (SELECT round((count(*) / extract(epoch FROM max(updated_at) - min(created_at)))::numeric, 1)
            FROM placements WHERE cid LIKE '$3%'),
         (SELECT round(extract(epoch FROM max(updated_at) - min(created_at))::numeric, 1)
            FROM placements WHERE cid LIKE '$3%'),
         (SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_attempt_at - created_at)) * 1000)::numeric, 1)
            FROM placements WHERE cid LIKE '$3%'))
       FROM placements WHERE cid LIKE '$2%'"
}
if ((dispatch > 0)); then
  # The POST run above leaves pin jobs behind; measure only once they are done.
  log "waiting for the POST run's pin jobs to finish"
  until [ "$(sql "SELECT count(*) FROM placements WHERE state IN ('queued', 'pinning')")" -eq 0 ]; do sleep 1; done
  log "dispatch latency: 200 pins, one at a time"
  idle=$(dispatch_phase 200 1 20 1 | tail -n 1)
  log "throughput: $dispatch pins at $connections connections"
  burst=$(dispatch_phase "$dispatch" "$connections" 0 2 | tail -n 1)
  rows=("$(dispatch_figures postgres "$idle" "$burst")")
  if ((compare_nats)); then
    log "restarting the stack on the NATS backend"
    stop_stack
    start_stack nats
    wait_for "$base/v1/ready" 300 || { tail -n 30 "$work/server.log" >&2; die "no /v1/ready on the NATS backend"; }
    log "NATS: dispatch latency: 200 pins, one at a time"
    idle_nats=$(dispatch_phase 200 1 20 3 | tail -n 1)
    log "NATS: throughput: $dispatch pins at $connections connections"
    burst_nats=$(dispatch_phase "$dispatch" "$connections" 0 4 | tail -n 1)
    rows+=("$(dispatch_figures nats "$idle_nats" "$burst_nats")")
  fi
  {
    echo
    echo "Dispatch: POST to a worker taking the job up (first_attempt_at - created_at), on an"
    echo "idle queue (200 POSTs one after another); throughput for $dispatch POSTs at once,"
    echo "first POST to last pin (identity CIDs: locally available content)."
    echo
    echo "| backend | idle p50 ms | idle p99 ms | idle max ms | burst pins/s | burst s | burst queue wait p50 ms |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
  } | tee -a "$report"
fi
