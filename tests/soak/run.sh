#!/usr/bin/env bash
# The seeded soak (tests/it/soak): three nodes, clients of three orgs, a seeded fault
# schedule (kill -9 of a node, a frozen leader, a Postgres restart, a stopped IPFS node,
# and with --backend nats a killed nats-server), then a checker of the ledger against the
# database and every IPFS node. A violation exits non-zero and prints the seed.
#
#   bash tests/soak/run.sh [--minutes 2] [--seed 1] [--backend postgres|nats]
#
# It restarts the test run's Postgres, so it runs alone, after the other tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=2
seed=1
backend=postgres
while (($#)); do
  case $1 in
    --minutes) minutes=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    --backend) backend=${2:?}; shift 2 ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "--minutes must be a number" >&2; exit 2; }
[[ $seed =~ ^[0-9]+$ ]] || { echo "--seed must be a number" >&2; exit 2; }
case $backend in postgres | nats) ;; *) echo "--backend takes postgres or nats" >&2; exit 2 ;; esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anchorage/target}"
SOAK_MINUTES=$minutes SOAK_SEED=$seed SOAK_BACKEND=$backend \
  cargo test --locked --test it -- --ignored --exact soak::soak --nocapture
