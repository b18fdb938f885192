#!/usr/bin/python3
"""A small HTTP server for the end-to-end tests.

    httpfile.py --dir DIR --port N [--bind ADDR] [--log FILE]

GET /NAME          serves DIR/NAME (Content-Length, 1 MiB chunks)
PUT|POST /ANYTHING reads the body (Content-Length or chunked) and answers
                   "<sha256-hex> <byte-count>\\n"
Every finished request is appended to --log as one line:
    <method> <path> <client-addr> <client-port> <bytes> <sha256-or->
The default bind address is '::' with IPV6_V6ONLY off, so it serves both
IPv4 and IPv6.
"""

import argparse
import hashlib
import http.server
import os
import socket
import sys
import threading

CHUNK = 1 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mwtest-httpfile/1"

    def log_message(self, fmt, *args):  # quiet: the log file is the record
        pass

    def record(self, nbytes, digest):
        if not self.server.logfile:
            return
        host, port = self.client_address[0], self.client_address[1]
        if host.startswith("::ffff:"):
            host = host[7:]
        line = f"{self.command} {self.path} {host} {port} {nbytes} {digest}\n"
        with self.server.loglock, open(self.server.logfile, "a") as f:
            f.write(line)

    def do_GET(self):
        name = os.path.basename(self.path.split("?", 1)[0])
        path = os.path.join(self.server.dir, name)
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(404)
            self.record(0, "-")
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            sent = 0
            while True:
                b = f.read(CHUNK)
                if not b:
                    break
                self.wfile.write(b)
                sent += len(b)
        self.wfile.flush()
        self.record(sent, "-")

    def _body(self):
        h = hashlib.sha256()
        n = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("EOF in chunk header")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, CHUNK))
                    if not b:
                        raise ConnectionError("EOF in chunk")
                    h.update(b)
                    n += len(b)
                    left -= len(b)
                self.rfile.readline(1024)
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                b = self.rfile.read(min(left, CHUNK))
                if not b:
                    raise ConnectionError(f"EOF with {left} bytes still expected")
                h.update(b)
                n += len(b)
                left -= len(b)
        return h.hexdigest(), n

    def do_PUT(self):
        # an "Expect: 100-continue" was already answered by parse_request()
        digest, n = self._body()
        body = f"{digest} {n}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.record(n, digest)

    do_POST = do_PUT


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, family):
        self.address_family = family
        super().__init__(addr, Handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="::")
    ap.add_argument("--log")
    a = ap.parse_args()
    family = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    srv = Server((a.bind, a.port), family)
    srv.dir = a.dir
    srv.logfile = a.log
    srv.loglock = threading.Lock()
    print(f"listening {a.bind} {a.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
