#!/usr/bin/python3
"""A prefork-style server: socketserver.ForkingTCPServer (one forked child per
connection, the child using the listener's accepted socket).

    forkserver.py --port N [--bind ::] [--log FILE]

Each connection: read to EOF (the client half-closes), then answer
"<child-pid> <sha256> <len>\\n" followed by the bytes received.  Prints
"listening <port> <server-pid>" when ready; each child appends "served
<child-pid> <peer> <len>" to FILE (O_APPEND, one write: the children's lines
never overwrite each other, as they can on a shared, non-append stdout).
"""

import argparse
import hashlib
import os
import socket
import socketserver
import sys

LOG = None


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(60)
        buf = bytearray()
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            buf.extend(b)
        s.sendall(f"{os.getpid()} {hashlib.sha256(buf).hexdigest()} {len(buf)}\n".encode() + bytes(buf))
        s.shutdown(socket.SHUT_WR)
        peer = self.client_address[0]
        if peer.startswith("::ffff:"):
            peer = peer[7:]
        line = f"served {os.getpid()} {peer} {len(buf)}\n".encode()
        if LOG:
            fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, line)
            os.close(fd)
        else:
            os.write(1, line)


class Server(socketserver.ForkingTCPServer):
    allow_reuse_address = True
    request_queue_size = 64
    max_children = 64

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="::")
    ap.add_argument("--log")
    a = ap.parse_args()
    global LOG
    LOG = a.log
    Server.address_family = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    with Server((a.bind, a.port), Handler) as srv:
        print(f"listening {a.port} {os.getpid()}", flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
