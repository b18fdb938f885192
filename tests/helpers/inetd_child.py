#!/usr/bin/python3
"""An inetd-style service: the connection is stdin/stdout (socat ... EXEC:).

Reads stdin to EOF, then writes "<tag> <sha256> <len>\\n" followed by the
bytes read.  <tag> is "<peer>,<env>": <peer> is getpeername() of fd 0 when fd
0 is an INET socket (the connection itself was handed over, socat's
`nofork`), else "-" (socat relays through a socketpair or pipes); <env> is
$SOCAT_PEERADDR (what socat's accept() reported), else "-".  A second line on
stderr says what fd 0 is: "fd0 family=<n> type=<n>".
"""

import hashlib
import ipaddress
import os
import socket
import sys


def main():
    peer = "-"
    try:
        s = socket.socket(fileno=os.dup(0))
        sys.stderr.write(f"fd0 family={int(s.family)} type={int(s.type)}\n")
        if s.family in (socket.AF_INET, socket.AF_INET6):
            peer = s.getpeername()[0]
            if peer.startswith("::ffff:"):
                peer = peer[7:]
        s.detach()
    except OSError as e:
        sys.stderr.write(f"fd0 not a socket: {e!r}\n")
    env = os.environ.get("SOCAT_PEERADDR", "-") or "-"
    if env.startswith("[") and env.endswith("]"):
        env = env[1:-1]
    try:  # socat writes IPv6 addresses in full: compress them, and unmap v4-mapped ones
        a = ipaddress.ip_address(env)
        env = str(a.ipv4_mapped or a) if a.version == 6 else str(a)
    except ValueError:
        pass
    buf = bytearray()
    while True:
        b = os.read(0, 1 << 16)
        if not b:
            break
        buf.extend(b)
    out = f"{peer},{env} {hashlib.sha256(buf).hexdigest()} {len(buf)}\n".encode() + bytes(buf)
    view = memoryview(out)
    while view:
        n = os.write(1, view)
        view = view[n:]
    # half-close the connection when it is ours (nofork), so the client sees EOF now
    try:
        s = socket.socket(fileno=os.dup(1))
        if s.family in (socket.AF_INET, socket.AF_INET6):
            s.shutdown(socket.SHUT_WR)
        s.close()
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
