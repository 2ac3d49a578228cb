"""Opens GET /v1/events as a WebSocket (the handshake by hand: the standard library has
no client), prints the HTTP status line of the upgrade, then the first text message that
contains WANT, or exits 1 when none arrives in time.

    python3 ws_first_event.py HOST PORT TOKEN WANT SECONDS
"""
import base64
import os
import socket
import sys
import time

host, port, token, want, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
deadline = time.monotonic() + seconds
sock = socket.create_connection((host, port), timeout=seconds)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall(
    (
        f"GET /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
)
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = sock.recv(4096)
    if not chunk:
        sys.exit("connection closed during the upgrade")
    buf += chunk
head, buf = buf.split(b"\r\n\r\n", 1)
print(head.split(b"\r\n")[0].decode(), flush=True)
if b" 101 " not in head.split(b"\r\n")[0]:
    sys.exit(1)


def read(n):
    global buf
    while len(buf) < n:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("the socket closed before the event")
        buf += chunk
    out, buf = buf[:n], buf[n:]
    return out


while time.monotonic() < deadline:
    b0, b1 = read(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(read(2), "big")
    elif length == 127:
        length = int.from_bytes(read(8), "big")
    payload = read(length)
    opcode = b0 & 0x0F
    if opcode == 8:
        sys.exit(f"closed by the server: {payload!r}")
    if opcode == 1 and want in payload.decode(errors="replace"):
        print(payload.decode(), flush=True)
        sys.exit(0)
sys.exit("no matching event in time")
