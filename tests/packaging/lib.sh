# shellcheck shell=bash
# Sourced by every script in tests/packaging/: one line per check (`ok: …` or
# `FAIL: …: …` and exit 1), the cache directory, and small shared helpers.
# Nothing here is ever skipped: a missing tool is a failure that names it.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$repo/tests/packaging"
cache="${ANCHORAGE_CACHE:-$HOME/.cache/anchorage}"

ok() { echo "ok: $*"; }
fail() {
  echo "FAIL: $1: $2" >&2
  exit 1
}

# check WHAT CMD...: runs CMD; ok when it exits 0, else FAIL with its last output lines.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$what"
  else
    local rc=$?
    fail "$what" "$(tail -n 8 <<<"${out:-exit $rc from: $*}")"
  fi
}

# expect WHAT GOT WANT: ok when the two strings are equal.
expect() {
  [ "$2" = "$3" ] || fail "$1" "got '$2', want '$3'"
  ok "$1"
}

# check_modes WHAT TABLE RUNNER...: TABLE has lines "path mode user:group"; RUNNER runs
# stat where the package was installed (chroot ROOT, docker exec NAME), so names resolve
# against that system's users.
check_modes() {
  local what=$1 table=$2 got
  shift 2
  # shellcheck disable=SC2046 # one path per word
  got=$("$@" stat -c '%n %a %U:%G' $(awk '{print $1}' <<<"$table") 2>&1) || true
  [ "$got" = "$table" ] || fail "$what" "$(diff <(echo "$table") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
  ok "$what"
}

# What every package installs, with modes and owners (the unit or init script differs).
package_modes="/usr/bin/anchorage 755 root:root
/etc/anchorage 750 root:anchorage
/etc/anchorage/anchorage.yaml 640 root:anchorage
/etc/anchorage/anchorage.yaml.example 644 root:root
/var/lib/anchorage 750 anchorage:anchorage
/var/log/anchorage 750 anchorage:anchorage
/usr/share/man/man1/anchorage.1.gz 644 root:root"

# one GLOB-RESULT...: exactly one file matched (dist/ holds one build).
one() {
  [ "$#" -eq 1 ] && [ -f "$1" ] || fail "dist" "expected one file, found: $*"
  echo "$1"
}

# need TOOL...: every tool must be on PATH (prereqs.sh --tests installs them).
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 \
      || fail "prerequisite" "$tool is not installed (bash packaging/prereqs.sh --tests installs it)"
  done
}

# need_env VAR...: set by tests/packaging/run.sh, which starts dockerd and Postgres.
need_env() {
  local var
  for var in "$@"; do
    [ -n "${!var:-}" ] || fail "environment" "$var is unset: run these tests through tests/packaging/run.sh"
  done
}

# key TEXT FILE...: a short hash of some text and the contents of files, for cache names.
key() {
  local text=$1
  shift
  { echo "$text"; cat -- "$@"; } | sha256sum | cut -c1-16
}

# remove_tree DIR: unmounts whatever is mounted under DIR (proc in a root, dockerd's netns
# files), then deletes it; never deletes across a mount that is still there.
remove_tree() {
  local dir=$1 mnt
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  for mnt in $(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
  done
  if grep -qF " $dir/" /proc/mounts; then
    echo "FAIL: cleanup: $dir still has mounts; left in place" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# exited PID: the process is gone or a zombie (our child, not yet waited for).
exited() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ "$state" == Z* ]]
}

# wait_for SECONDS CMD...: retries CMD every half second until it succeeds or time is up.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
