# shellcheck shell=bash
# Sourced by run.sh: a private dockerd (never a running one), stopped by its PID. Its data
# root is cached, so the imported base and built layers survive between runs. No bridge
# and no iptables rules touch the host: containers use --network none or host.

dockerd_start() {
  need dockerd containerd runc docker
  docker_run=$(mktemp -d /tmp/anchorage-dockerd.XXXXXX)
  mkdir -p "$cache/docker"
  dockerd --data-root "$cache/docker" --exec-root "$docker_run/exec" \
    --host "unix://$docker_run/docker.sock" --pidfile "$docker_run/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    >"$docker_run/dockerd.log" 2>&1 9>&- &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$docker_run/docker.sock"
  wait_for 60 docker version \
    || fail "dockerd" "no answer within 60 s: $(tail -n 5 "$docker_run/dockerd.log")"
  ok "private dockerd $(docker version --format '{{.Server.Version}}') ($DOCKER_HOST)"
}

dockerd_stop() {
  [ -n "${dockerd_pid:-}" ] || return 0
  local pid=$dockerd_pid
  dockerd_pid=""
  # Leftover test containers first, then the daemon (it stops its containerd); SIGKILL
  # if it has not exited within 30 s.
  docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
  kill "$pid" 2>/dev/null || true
  wait_for 30 exited "$pid" || kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  remove_tree "$docker_run"
}
