"""TCP urgent data in the middle of a stream toward a program under mwrun.

The kernel stops a read at an urgent mark: splice (mwinsd splices bulk toward the program) returns EAGAIN
there, or 0 once a FIN is queued behind it; recv returns what came before the mark, short, and steps over it
on the next call.  The program must get every in-band byte, as a direct client does, whether the bytes are
bulk or a few, and whether or not the peer closes after sending.  The direct client runs in the same test,
so the expectation is the kernel's own."""

import hashlib
import json

import pytest

from conftest import PY, san_check

# Bulk: the program waits before it reads, so that the carrier fills, mwinsd stops, TCP queues, and the reads
# that follow are large (mwinsd splices after a read of 64 KiB); the peer pauses before its urgent byte, so
# the splicing has caught up with the mark when it comes.
BULK = (8000000, 150000, 0.5)
SMALL = (1000, 1000, 0)  # copied: a few bytes each side of the mark

SERVER = r"""
import socket, sys, time
port, hold, before, after, pause = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port))
ls.listen(8)
for _ in range(2):
    c, _ = ls.accept()
    # Small: corked, so that the a's and the urgent byte go out in one segment.  Bulk: each at once, so that
    # the urgent byte starts a segment, and the reader (splicing by then) stands at the mark.
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK if not pause else socket.TCP_NODELAY, 1)
    c.sendall(b"a" * before)
    time.sleep(pause)
    c.send(b"!", socket.MSG_OOB)
    c.sendall(b"b" * after)
    if not pause:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    if hold:
        c.settimeout(hold)
        try:
            c.recv(1)  # until the client closes (or the hold runs out): no FIN before that
        except OSError:
            pass
    c.close()
"""

CLIENT = r"""
import hashlib, json, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
want, got, h = int(sys.argv[3]), 0, hashlib.sha256()
time.sleep(float(sys.argv[4]))
deadline = time.monotonic() + 5  # well inside the peer's hold: a stall shows as "deadline"
end = "eof"
while got < want:
    if time.monotonic() > deadline:
        end = "deadline"
        break
    try:
        b = s.recv(65536)
    except socket.timeout:
        end = "timeout"
        break
    if not b:
        break
    got += len(b)
    h.update(b)
else:
    end = "all"
s.close()
print(json.dumps({"bytes": got, "sha256": h.hexdigest(), "end": end}))
"""


@pytest.mark.parametrize("sizes", [BULK, SMALL], ids=["bulk", "small"])
@pytest.mark.parametrize("fin", [True, False], ids=["then-fin", "held-open"])
def test_urgent_byte_loses_nothing(topo, ins, fin, sizes):
    before, after, pause = sizes
    port = topo.port()
    srv = topo.popen(topo.world, [PY, "-c", SERVER, port, 0 if fin else 12, before, after, pause])
    try:
        topo.wait_port(topo.world, port, proc=srv)
        argv = [PY, "-c", CLIENT, topo.world4, port, before + after, pause]
        direct = topo.run(topo.ins, argv, timeout=30)
        assert direct.returncode == 0, direct.stderr
        wrapped = ins.run(argv, timeout=30)
        assert wrapped.returncode == 0, wrapped.stderr
        san_check(wrapped.stderr, "client under mwrun")
        d, w = json.loads(direct.stdout), json.loads(wrapped.stdout)
        inband = hashlib.sha256(b"a" * before + b"b" * after).hexdigest()
        assert d == {"bytes": before + after, "sha256": inband, "end": "all"}, d  # the kernel's answer
        assert w == d, f"under mwrun: {w}; direct: {d}"
    finally:
        topo.stop(srv)
