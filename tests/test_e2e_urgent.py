"""TCP urgent data in the middle of a bulk stream toward a program under mwrun.

mwinsd splices bulk toward the program, and the kernel's splice from TCP stops at an urgent mark (EAGAIN, or 0
once a FIN is queued behind it) where recv() steps over it.  The program must get every in-band byte, as a
direct client does, whether or not the peer closes after sending.  The direct client runs in the same test,
so the expectation is the kernel's own."""

import hashlib
import json

import pytest

from conftest import PY, san_check

BEFORE, AFTER = 400000, 150000

SERVER = r"""
import socket, sys, time
port, hold = int(sys.argv[1]), float(sys.argv[2])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port))
ls.listen(8)
for _ in range(2):
    c, _ = ls.accept()
    c.sendall(b"a" * %d)
    time.sleep(0.2)
    c.send(b"!", socket.MSG_OOB)
    c.sendall(b"b" * %d)
    if hold:
        c.settimeout(hold)
        try:
            c.recv(1)  # until the client closes (or the hold runs out): no FIN before that
        except OSError:
            pass
    c.close()
""" % (BEFORE, AFTER)

CLIENT = r"""
import hashlib, json, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
want, got, h = int(sys.argv[3]), 0, hashlib.sha256()
deadline = time.monotonic() + 10
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


@pytest.mark.parametrize("fin", [True, False], ids=["then-fin", "held-open"])
def test_urgent_byte_mid_bulk_loses_nothing(topo, ins, fin):
    port = topo.port()
    srv = topo.popen(topo.world, [PY, "-c", SERVER, port, 0 if fin else 8])
    try:
        topo.wait_port(topo.world, port, proc=srv)
        argv = [PY, "-c", CLIENT, topo.world4, port, BEFORE + AFTER]
        direct = topo.run(topo.ins, argv, timeout=30)
        assert direct.returncode == 0, direct.stderr
        wrapped = ins.run(argv, timeout=30)
        assert wrapped.returncode == 0, wrapped.stderr
        san_check(wrapped.stderr, "client under mwrun")
        d, w = json.loads(direct.stdout), json.loads(wrapped.stdout)
        inband = hashlib.sha256(b"a" * BEFORE + b"b" * AFTER).hexdigest()
        assert d == {"bytes": BEFORE + AFTER, "sha256": inband, "end": "all"}, d  # the kernel's answer
        assert w == d, f"under mwrun: {w}; direct: {d}"
    finally:
        topo.stop(srv)
