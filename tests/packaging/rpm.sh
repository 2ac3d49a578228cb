#!/usr/bin/env bash
# The .rpm: rpmlint (only the findings packaging/rpmlint.toml justifies); its file list and
# scriptlets; then the host's rpm installs it into a throwaway Debian root (--root, own
# database, --nodeps: the root is not an rpm distribution), running the scriptlets there
# (they create the user with the root's useradd), and rpm -V verifies every file.
# Run by tests/packaging/run.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$here/debroot.sh"
need rpm rpmlint debootstrap chroot

rpmf=$(one "$repo"/dist/anchorage-*.x86_64.rpm)
root=""
trap 'remove_tree "$root"' EXIT
trap 'exit 130' INT TERM

check "rpm: rpmlint --strict: no findings but those packaging/rpmlint.toml justifies" \
  rpmlint --strict -c "$repo/packaging/rpmlint.toml" "$rpmf"
listing=$(rpm -qpil "$rpmf")
for path in /usr/bin/anchorage /etc/anchorage/anchorage.yaml /etc/anchorage/anchorage.yaml.example \
  /usr/lib/systemd/system/anchorage.service /var/lib/anchorage /var/log/anchorage \
  /usr/share/man/man1/anchorage.1.gz /usr/share/licenses/anchorage/LICENSE; do
  grep -qx "$path" <<<"$listing" || fail "rpm: rpm -qpil" "$path is not in the package"
done
ok "rpm: rpm -qpil lists the binary, config, unit, directories, man page and licence"
expect "rpm: config files" "$(rpm -qpc "$rpmf" | tr '\n' ' ')" \
  "/etc/anchorage/anchorage.yaml /etc/anchorage/anchorage.yaml.example "
expect "rpm: scriptlets" "$(rpm -qp --scripts "$rpmf" | grep -oE '^[a-z]+ scriptlet' | tr '\n' ',')" \
  "preinstall scriptlet,postinstall scriptlet,preuninstall scriptlet,postuninstall scriptlet,"

root=$(debroot_new)
check "rpm: rpm --root --initdb" rpm --root "$root" --initdb
check "rpm: rpm --root -ivh --nodeps (scriptlets run in the root)" rpm --root "$root" -ivh --nodeps "$rpmf"
check "rpm: rpm --root -V anchorage" rpm --root "$root" -V anchorage
expect "rpm: anchorage --version" "$(chroot "$root" anchorage --version)" "$("$repo/dist/anchorage" --version)"
expect "rpm: system user anchorage" "$(chroot "$root" getent passwd anchorage | cut -d: -f6)" /var/lib/anchorage
check_modes "rpm: files, modes and owners" "$package_modes
/usr/lib/systemd/system/anchorage.service 644 root:root" chroot "$root"
check "rpm: rpm --root -e anchorage" rpm --root "$root" -e anchorage
check "rpm: rpm -e removed the binary" test ! -e "$root/usr/bin/anchorage"
