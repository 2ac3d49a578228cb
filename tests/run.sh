#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs missing prerequisites, checks
# formatting and lints, runs every test (they start their own private Postgres cluster
# and real Kubo nodes), then the release artifacts' install tests (tests/packaging),
# and stops the test Postgres afterwards.
#
# --fast: only the fast tier: the formatting check, clippy and the library's unit tests
# (`cargo test --lib`: no Postgres, no Kubo, no network). No prerequisites are installed
# and no npm, packaging, Swarm or compatibility test runs.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=false
case "${1:-}" in
  "") ;;
  --fast) fast=true ;;
  *) echo "usage: $0 [--fast]" >&2; exit 2 ;;
esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anchorage/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if $fast; then
  cargo fmt --all -- --check
  cargo clippy --all-targets --locked -- -D warnings
  cargo test --lib --locked
  exit 0
fi

bash packaging/prereqs.sh --tests

test_pg="$CARGO_TARGET_DIR/tmp/anchorage-test-pg"
cleanup() {
  if [ -f "$test_pg/postmaster.pid" ]; then
    pid=$(head -1 "$test_pg/postmaster.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap cleanup EXIT
# A cluster left by an interrupted run holds databases of tests that no longer exist.
cleanup

# The login tests' OpenID Provider (npm oidc-provider, tests/oidc): install it unless
# node_modules is already there and no older than the lock file.
if [ ! -e tests/oidc/node_modules/.package-lock.json ] \
  || [ tests/oidc/node_modules/.package-lock.json -ot tests/oidc/package-lock.json ]; then
  npm ci --prefix tests/oidc --no-audit --no-fund
fi
# The console's browser tests (tests/e2e): npm playwright-core, which drives Debian's
# /usr/bin/chromium; it must never download a browser of its own.
if [ ! -e tests/e2e/node_modules/.package-lock.json ] \
  || [ tests/e2e/node_modules/.package-lock.json -ot tests/e2e/package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e --no-audit --no-fund
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked -- --test-threads "${TEST_THREADS:-4}"
# The seeded soak (bash tests/soak/run.sh --minutes 2 --seed 1) is not in this gate yet:
# its run at 2026-12-08 03:27 found 14 pins left with one replica of two after settling;
# issue 21 investigates that before the soak gates CI.
# The release artifacts: packaging/dist.sh (the musl binary is reused while its inputs
# are unchanged), then each package installed in a throwaway root or container and the
# image run against a private Postgres (tests/packaging/run.sh; root only).
bash tests/packaging/run.sh
# The Swarm stack (packaging/swarm): static checks, then deployed for real on a private
# one-machine swarm with the image tests/packaging/run.sh built (root only).
bash tests/swarm/static.sh
bash tests/swarm/deploy.sh
# Schema compatibility across one version: the binary from before the newest migration
# beside this one, on the migrated schema.
bash tests/compat/run.sh
