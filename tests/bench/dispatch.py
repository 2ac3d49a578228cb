#!/usr/bin/env python3
"""POST N pins of identity CIDs (content inline, so every pin is locally available) as
fast as `--concurrency` threads allow. Used by run.sh's dispatch phase; prints the POST
wall time. Stdlib only."""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

# CIDv1, raw codec, identity multihash of 31 bytes, base32: the first 5 bytes
# (01 55 00 1f 03) encode as "afkqahyd"; any 48 chars of [a-z2-7] follow. run.sh's
# load and POST phases use first payload bytes 01 and 02, so these never collide.
PREFIX = "bafkqahyd"


def letters(digits: str) -> str:
    return "".join(chr(97 + int(d)) for d in digits)


def run_prefix(run: int) -> str:
    return PREFIX + letters(f"{run:016d}")


def cid(run: int, n: int) -> str:
    return run_prefix(run) + letters(f"{n:016d}") + "q" * 16


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="service endpoint ending /v1")
    ap.add_argument("--token", required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--run", type=int, default=int(time.time()))
    ap.add_argument("--gap-ms", type=int, default=0, help="pause between POSTs of one thread")
    a = ap.parse_args()
    url = urllib.parse.urlparse(a.url)
    local = threading.local()
    failures = []

    def post(n: int) -> None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        body = json.dumps({"cid": cid(a.run, n), "name": f"bench-dispatch-{n}"})
        local.conn.request("POST", url.path + "/pins", body, {
            "Authorization": f"Bearer {a.token}", "Content-Type": "application/json"})
        resp = local.conn.getresponse()
        data = resp.read()
        if resp.status != 202:
            failures.append((resp.status, data[:200]))
        if a.gap_ms:
            time.sleep(a.gap_ms / 1000)

    started = time.monotonic()
    with ThreadPoolExecutor(a.concurrency) as pool:
        list(pool.map(post, range(a.count)))
    elapsed = time.monotonic() - started
    print(f"posted={a.count - len(failures)} failed={len(failures)} seconds={elapsed:.2f} prefix={run_prefix(a.run)}")
    for status, data in failures[:5]:
        print(f"  failure: {status} {data!r}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
