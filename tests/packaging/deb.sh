#!/usr/bin/env bash
# The .deb: lintian; dpkg -i in a throwaway Debian root; the user, files and modes it
# installs; systemd-analyze verify on the installed unit; `migrate up` and `serve` from
# the installed /etc/anchorage/anchorage.yaml (only the addresses overridden by
# ANCHORAGE_* variables) against the private Postgres, answering /v1/health; dpkg -r
# keeps the config, dpkg -P removes it and the user. Run by tests/packaging/run.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$here/debroot.sh"
source "$here/postgres.sh"
need dpkg-deb lintian openssl debootstrap chroot
need_env PG_PORT PG_BIN

deb=$(one "$repo"/dist/anchorage_*_amd64.deb)
root="" serve_pid=""
cleanup() {
  [ -z "$serve_pid" ] || kill -9 "$serve_pid" 2>/dev/null || true
  remove_tree "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Errors and warnings fail; the package's overrides must each carry a reason, and match.
lint=$(lintian --display-info --fail-on error,warning "$deb" 2>&1) || fail "deb: lintian" "$lint"
! grep -E 'unused-override|mismatched-override' <<<"$lint" || fail "deb: lintian" "stale override: $lint"
ok "deb: lintian: no errors or warnings ($(grep -c '^I:' <<<"$lint" || true) informational tags)"
check "deb: every lintian override it ships has a reason" awk '
  /^#/ {reason = 1; next}
  /^$/ {reason = 0; next}
  !reason {print "no reason for: " $0; bad = 1}
  END {exit bad}' <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/lintian/overrides/anchorage)
expect "deb: conffiles" "$(dpkg-deb -I "$deb" conffiles | sort | tr '\n' ' ')" \
  "/etc/anchorage/anchorage.yaml /etc/anchorage/anchorage.yaml.example "

root=$(debroot_new)
in_root() { chroot "$root" "$@"; }
cp "$deb" "$root/tmp/"
check "deb: dpkg -i in a fresh $deb_suite root" in_root dpkg -i "/tmp/${deb##*/}"
expect "deb: anchorage --version" "$(in_root anchorage --version)" "$("$repo/dist/anchorage" --version)"
expect "deb: system user anchorage" \
  "$(in_root getent passwd anchorage | awk -F: '$3 < 1000 {print $6, $7}')" "/var/lib/anchorage /usr/sbin/nologin"
check_modes "deb: files, modes and owners" "$package_modes
/lib/systemd/system/anchorage.service 644 root:root" in_root

# The root's own systemd, with the unit's ExecStart binary now installed there.
unit=/lib/systemd/system/anchorage.service
check "deb: systemd-analyze verify $unit" in_root systemd-analyze verify "$unit"
exposure=$(in_root systemd-analyze security --offline=true "$unit" 2>&1 \
  | awk '/Overall exposure level/ {print $(NF-2), $(NF-1)}')
[[ "$exposure" =~ \ (OK|SAFE|PERFECT)$ ]] || fail "deb: systemd-analyze security" "exposure '$exposure'"
ok "deb: systemd-analyze security --offline: exposure $exposure"

# As the packaged config's runbook says: a signing key only the service user reads.
openssl rand -base64 48 >"$root/etc/anchorage/jwt.key"
chmod 0400 "$root/etc/anchorage/jwt.key"
in_root chown anchorage:anchorage /etc/anchorage/jwt.key
port=$(free_port)
mapfile -t env < <(app_env "$port")
config=/etc/anchorage/anchorage.yaml
pg_fresh_db
check "deb: anchorage migrate up --config $config" in_root env "${env[@]}" anchorage migrate up --config "$config"
# The unit's User= and ExecStart, without systemd: the service user must read the config.
log="$root/tmp/serve.log"
chroot --userspec=anchorage:anchorage "$root" env "${env[@]}" \
  /usr/bin/anchorage serve --config "$config" >"$log" 2>&1 &
serve_pid=$!
wait_for 60 in_root anchorage healthcheck --config "$config" --url "http://127.0.0.1:$port" \
  || fail "deb: serve as user anchorage" "no /v1/health answer in 60 s; log: $(tail -n 5 "$log")"
ok "deb: serve as user anchorage with the installed config answers /v1/health"
kill -TERM "$serve_pid"
rc=0 && wait "$serve_pid" || rc=$?
serve_pid=""
expect "deb: serve exits 0 on SIGTERM" "$rc" 0

check "deb: dpkg -r" in_root dpkg -r anchorage
check "deb: dpkg -r removed the binary" test ! -e "$root/usr/bin/anchorage"
check "deb: dpkg -r kept the config" test -f "$root$config"
check "deb: dpkg -P" in_root dpkg -P anchorage
check "deb: dpkg -P removed /etc/anchorage" test ! -e "$root/etc/anchorage"
check "deb: dpkg -P removed the user and group" \
  bash -c "! chroot '$root' getent passwd anchorage && ! chroot '$root' getent group anchorage"
