#!/usr/bin/env bash
# Quickstart: installs missing prerequisites, builds anchorage and runs `anchorage dev`
# (private Postgres and IPFS node under ./.anchorage, demo org, tokens in
# ./.anchorage/dev.env). Extra arguments go to `anchorage dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anchorage/target}"
bash packaging/prereqs.sh
exec cargo run --quiet --locked --bin anchorage -- dev "$@"
