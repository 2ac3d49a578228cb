#!/usr/bin/env bash
# The .apk: installed with `apk add --no-network --allow-untrusted` in a container of the
# Alpine base (tests/packaging/alpine.sh), which runs its pre-install (the user, with
# BusyBox's adduser); then the binary, files, modes and the OpenRC script; apk del.
# Run by tests/packaging/run.sh, which starts the private dockerd and imports the base.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$here/alpine.sh"
need docker
need_env DOCKER_HOST

apkf=$(one "$repo"/dist/anchorage_*_x86_64.apk)
check "apk: .PKGINFO and the payload" bash -c "tar -tzf '$apkf' 2>/dev/null | grep -qx .PKGINFO \
  && tar -tzf '$apkf' 2>/dev/null | grep -qx usr/bin/anchorage"

name="anchorage-apk-test-$$"
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM
docker run -d --name "$name" --network none -v "$repo/dist:/dist:ro" "$alpine_image" sleep 600 >/dev/null \
  || fail "apk" "cannot start a container of $alpine_image"
in_alpine() { docker exec "$name" "$@"; }

check "apk: apk add --no-network --allow-untrusted in $alpine_image" \
  in_alpine apk add --quiet --no-network --allow-untrusted "/dist/${apkf##*/}"
expect "apk: the pre-install created system user anchorage" \
  "$(in_alpine getent passwd anchorage | cut -d: -f6,7)" "/var/lib/anchorage:/sbin/nologin"
expect "apk: anchorage --version" "$(in_alpine anchorage --version)" "$("$repo/dist/anchorage" --version)"
check_modes "apk: files, modes and owners" "$package_modes
/etc/init.d/anchorage 755 root:root
/etc/logrotate.d/anchorage 644 root:root" in_alpine
check "apk: the OpenRC script parses (sh -n)" in_alpine sh -n /etc/init.d/anchorage
check "apk: apk del" in_alpine apk del --quiet --no-network anchorage
check "apk: apk del removed the binary" in_alpine test ! -e /usr/bin/anchorage
