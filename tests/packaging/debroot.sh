# shellcheck shell=bash
# Sourced by deb.sh and rpm.sh: a throwaway Debian root (debootstrap --variant=minbase,
# plus systemd so that systemd-analyze can verify the unit against real system units)
# for installing the packages, never onto the host. Bootstrapped once from the mirror the
# host's apt uses and cached as a tarball keyed by suite, variant, package list, mirror
# and debootstrap's version; each test unpacks a fresh copy (a few seconds).

deb_suite=bookworm
deb_include=${deb_include:-systemd}
# The Swarm test's stand-in images use another package list: another cache directory.
deb_cache=${deb_cache:-debroot}

debroot_tarball() {
  local mirror tarball
  mirror=$(apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null \
    | awk -v suite="$deb_suite" '$2 == suite {print $1; exit}')
  [ -n "$mirror" ] || fail "debootstrap" "no apt source for $deb_suite (apt-get update first)"
  tarball="$cache/$deb_cache/$deb_suite-minbase-$(key "$deb_suite minbase $deb_include $mirror $(debootstrap --version)").tar"
  if [ ! -s "$tarball" ]; then
    local dir log
    dir=$(mktemp -d /tmp/anchorage-debootstrap.XXXXXX)
    log="$dir.log"
    debootstrap --variant=minbase --include="$deb_include" "$deb_suite" "$dir" "$mirror" >"$log" 2>&1 \
      || { remove_tree "$dir"; fail "debootstrap" "$deb_suite from $mirror: $(tail -n 3 "$log") (log: $log)"; }
    rm -f "$dir"/var/cache/apt/archives/*.deb
    mkdir -p "$(dirname "$tarball")"
    rm -f "$(dirname "$tarball")"/*.tar # older keys' tarballs
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    remove_tree "$dir"
    rm -f "$log"
  fi
  echo "$tarball"
}

# debroot_new: unpacks a fresh root, mounts /proc in it, prints its path (remove_tree
# takes it away).
debroot_new() {
  local tarball root
  tarball=$(debroot_tarball)
  root=$(mktemp -d /tmp/anchorage-root.XXXXXX)
  tar --numeric-owner -C "$root" -xpf "$tarball"
  chmod 0755 "$root" # a root directory, not mktemp's 0700: the service user runs in it
  mount -t proc proc "$root/proc"
  echo "$root"
}
