#!/usr/bin/python3
"""Load a TCP echo-style server and check every byte of every reply.

    echoload.py --host ADDR --port N [--conns 16] [--parallel 4] [--size BYTES]
                [--mode echo|framed] [--timeout 60]

Each connection sends --size random bytes (in chunks of varying size, while
reading the reply concurrently), half-closes, reads to EOF, and checks:

  echo    the reply is exactly the bytes sent;
  framed  the reply is "<tag> <sha256> <len>\\n" followed by exactly the bytes
          sent, where sha256/len describe what the server received; <tag> is
          whatever the server says (a pid, a peer address) and is collected.

Prints one JSON line {"ok": N, "failed": N, "bytes": N, "tags": [...],
"errors": [...]} and exits 0 only if every connection was correct.
"""

import argparse
import hashlib
import json
import os
import random
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def one(a, i, deadline):
    data = os.urandom(a.size)
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(max(1.0, deadline - time.monotonic()))
    got = bytearray()
    err = []
    try:
        s.connect((a.host, a.port))
        rnd = random.Random(i)

        def reader():
            try:
                while True:
                    b = s.recv(1 << 16)
                    if not b:
                        return
                    got.extend(b)
                    if len(got) > a.size + 4096:
                        err.append("reply longer than expected")
                        return
            except OSError as e:
                err.append(f"recv: {e!r}")

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        off = 0
        while off < len(data):
            n = min(len(data) - off, rnd.choice((1, 7, 512, 1460, 4096, 65536, 200000)))
            s.sendall(data[off:off + n])
            off += n
        s.shutdown(socket.SHUT_WR)
        t.join(max(0.1, deadline - time.monotonic()))
        if t.is_alive():
            return False, None, f"conn {i}: timed out with {len(got)}/{a.size} bytes back"
        if err:
            return False, None, f"conn {i}: {err[0]} ({len(got)} bytes back)"
    except OSError as e:
        return False, None, f"conn {i}: {e!r}"
    finally:
        s.close()
    tag = None
    body = bytes(got)
    if a.mode == "framed":
        nl = body.find(b"\n")
        if nl < 0:
            return False, None, f"conn {i}: no header line in {body[:80]!r}"
        head = body[:nl].decode(errors="replace").split()
        body = body[nl + 1:]
        if len(head) != 3:
            return False, None, f"conn {i}: bad header {head!r}"
        tag = head[0]
        if head[1] != hashlib.sha256(data).hexdigest() or head[2] != str(len(data)):
            return False, tag, f"conn {i}: server received other bytes: {head[1:]} (sent {len(data)})"
    if body != data:
        pos = next((k for k in range(min(len(body), len(data))) if body[k] != data[k]),
                   min(len(body), len(data)))
        return False, tag, (f"conn {i}: reply differs from what was sent: got {len(body)} bytes, "
                            f"sent {len(data)}, first difference at {pos}")
    return True, tag, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--size", type=int, default=100000)
    ap.add_argument("--mode", choices=("echo", "framed"), default="echo")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    res = {"ok": 0, "failed": 0, "bytes": 0, "tags": [], "errors": []}
    with ThreadPoolExecutor(max_workers=a.parallel) as ex:
        for ok, tag, e in ex.map(lambda i: one(a, i, deadline), range(a.conns)):
            if ok:
                res["ok"] += 1
                res["bytes"] += a.size
            else:
                res["failed"] += 1
                res["errors"].append(e)
            if tag is not None:
                res["tags"].append(tag)
    print(json.dumps(res), flush=True)
    sys.exit(0 if res["failed"] == 0 and res["ok"] == a.conns else 1)


if __name__ == "__main__":
    main()
