#!/usr/bin/python3
"""An exchange of known sizes, so that a test can compare a flow record with what really crossed.

    exchange.py server --port N --reply Y [--bind ADDR]
        Accepts connections forever; for each, reads to EOF, then sends Y bytes and closes.
    exchange.py client HOST PORT X [--hold S]
        Connects, sends X bytes, shuts down for writing, reads to EOF, and prints one JSON line:
        {"pid", "local": [addr, port], "sent": X, "received": n, "error": errno name or null}.
        --hold S waits S seconds before sending (to let a test act on the live flow).
    exchange.py udp HOST PORT X [--count K]
        Sends K datagrams of X bytes from one socket, prints {"pid", "local", "sent", "error"}.
"""

import argparse
import errno
import json
import os
import socket
import sys
import threading
import time


def serve(a):
    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(64)

    def one(c):
        with c:
            try:
                while c.recv(65536):
                    pass
                c.sendall(b"r" * a.reply)
            except OSError:
                pass

    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def client(a):
    out = {"pid": os.getpid(), "local": None, "sent": 0, "received": 0, "error": None}
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect((a.host, a.port))
        out["local"] = list(s.getsockname()[:2])
        if a.hold:
            print(json.dumps({"connected": out["local"], "pid": os.getpid()}), flush=True)
            time.sleep(a.hold)
        s.sendall(b"o" * a.size)
        out["sent"] = a.size
        s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out["received"] += len(b)
    except OSError as e:
        out["error"] = errno.errorcode.get(e.errno, str(e))
    print(json.dumps(out), flush=True)


def udp(a):
    out = {"pid": os.getpid(), "local": None, "sent": 0, "error": None}
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        for _ in range(a.count):
            s.sendto(b"u" * a.size, (a.host, a.port))
            out["sent"] += a.size
        out["local"] = list(s.getsockname()[:2])
    except OSError as e:
        out["error"] = errno.errorcode.get(e.errno, str(e))
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--reply", type=int, required=True)
    p.add_argument("--bind", default="::")
    p = sub.add_parser("client")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("size", type=int)
    p.add_argument("--hold", type=float, default=0)
    p = sub.add_parser("udp")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("size", type=int)
    p.add_argument("--count", type=int, default=1)
    a = ap.parse_args()
    {"server": serve, "client": client, "udp": udp}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
