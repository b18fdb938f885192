#!/usr/bin/python3
"""TCP sink that records every connection it accepts.

    tcpsink.py --port N [--bind ADDR] --log FILE

Listens (default '::', dual-stack), and for every accepted connection appends
"accept <addr> <port>" to FILE at once, then reads to EOF and appends
"close <addr> <port> <bytes>".  Runs until killed.
"""

import argparse
import socket
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="::")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(64)
    lock = threading.Lock()

    def log(line):
        with lock, open(a.log, "a") as f:
            f.write(line + "\n")

    def serve(c, peer):
        n = 0
        c.settimeout(30)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                n += len(b)
        except OSError:
            pass
        c.close()
        log(f"close {peer[0]} {peer[1]} {n}")

    while True:
        c, peer = s.accept()
        log(f"accept {peer[0]} {peer[1]}")
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()


if __name__ == "__main__":
    main()
