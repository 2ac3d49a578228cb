#!/usr/bin/env bash
# Install tests of the release artifacts (issue 17), run by tests/run.sh after the cargo
# tests. As root: starts a private dockerd and a private Postgres, makes the Alpine base
# offline, runs packaging/dist.sh (binary reused when its inputs are unchanged, then the
# packages and the image), and tests each artifact in a throwaway root or container:
# deb.sh, rpm.sh, apk.sh, image.sh. The host must end as it began: no anchorage user,
# unit, files or package. Everything is stopped and unmounted on exit, failed or not.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$here/dockerd.sh"
source "$here/alpine.sh"
source "$here/postgres.sh"
cd "$repo"

[ "$(id -u)" -eq 0 ] || fail "prerequisite" "run as root (chroot, loop mounts, dockerd)"
need docker dockerd containerd runc debootstrap lintian rpm rpmlint qemu-img openssl python3 flock strings

# Nothing named anchorage may be on the host before or after: every install happens in
# a throwaway root or container.
host_untouched() {
  local found=() path
  getent passwd anchorage >/dev/null && found+=("user anchorage")
  getent group anchorage >/dev/null && found+=("group anchorage")
  for path in /usr/bin/anchorage /etc/anchorage /lib/systemd/system/anchorage.service \
    /usr/lib/systemd/system/anchorage.service /etc/systemd/system/anchorage.service \
    /etc/init.d/anchorage /var/lib/anchorage /var/log/anchorage; do
    [ ! -e "$path" ] || found+=("$path")
  done
  dpkg-query -W anchorage >/dev/null 2>&1 && found+=("dpkg package anchorage")
  rpm -q anchorage >/dev/null 2>&1 && found+=("rpm package anchorage")
  ((${#found[@]} == 0)) || fail "host untouched ($1)" "${found[*]}"
  ok "host untouched ($1): no anchorage user, group, unit, files or package"
}

# One run at a time: the docker data root and the caches are shared. (The daemons this
# starts close fd 9, so a stray one cannot hold the lock.)
mkdir -p "$cache"
exec 9>"$cache/packaging.lock"
flock --wait 1800 9 || fail "lock" "another run holds $cache/packaging.lock"

cleanup() {
  dockerd_stop
  pg_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
host_untouched before
dockerd_start
alpine_base
dist_start=$SECONDS
bash packaging/dist.sh >"$cache/dist.log" 2>&1 || fail "packaging/dist.sh" "$(tail -n 15 "$cache/dist.log")"
ok "packaging/dist.sh in $((SECONDS - dist_start)) s: $(grep '^image ' "$cache/dist.log")"
# The dev stack's Python Kubo shim lives in tools/, never in the shipped binary.
python_in_binary=$(strings dist/anchorage | grep -E -c '^#!/usr/bin/env python3|^import ctypes|kubo_shim . a tiny' || true)
[ "$python_in_binary" -eq 0 ] || fail "no Python in dist/anchorage" "$python_in_binary shim lines found by strings"
ok "no Python in dist/anchorage (strings finds no shim line)"
pg_start

passed=0 failed=0
for artifact in deb rpm apk image; do
  t=$SECONDS
  if bash "$here/$artifact.sh"; then
    passed=$((passed + 1))
    echo "ok: $artifact in $((SECONDS - t)) s"
  else
    failed=$((failed + 1))
    echo "FAIL: $artifact (above)" >&2
  fi
done
# Older builds' layers go; the base and the current image stay cached.
docker image prune --force >/dev/null
cleanup
host_untouched after
echo "packaging tests in $((SECONDS - start)) s"
echo "packaging: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
