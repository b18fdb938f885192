"""A copy of a socket closed while its connect is in flight, the other copy used once connected.

The program connects without blocking to an address nothing answers yet (world drops SYNs to 10.77.9.x),
makes a copy of the socket, and closes the original.  Then the test gives world that address and a server
on it: the SYN sent again a second later connects.  The copy left is the same socket, so its first send
takes as much as any fresh connection's does.  Under mwrun, the close's hint made mwinsd let go of its copy
of the program's carrier end (so that a last close would hang the carrier up) before the connect was
answered; the send buffer it would have given back with that copy must still come back.  The direct run in
the same test is the expectation."""

import json
import time

from conftest import PY, output, san_check

CLIENT = r"""
import json, os, select, socket, sys
addr, port, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
try:
    s.connect((addr, port))
except BlockingIOError:
    pass
d = s.dup()
s.close()
open(marker, "w").close()
_, w, _ = select.select([], [d], [], 20)
err = d.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
try:
    n = d.send(b"x" * 262144)
except BlockingIOError:
    n = 0
print(json.dumps({"writable": bool(w), "error": err, "first_send": n}), flush=True)
"""

SERVER = r"""
import socket, sys
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind((sys.argv[1], int(sys.argv[2])))
ls.listen(4)
c, _ = ls.accept()
while c.recv(65536):
    pass
"""


def _one(topo, run_client, addr, tag):
    port = topo.port()
    marker = topo.tmpdir / f"closed-{tag}"
    client = run_client([PY, "-c", CLIENT, addr, port, marker])
    deadline = time.monotonic() + 15
    while not marker.exists() and time.monotonic() < deadline and client.poll() is None:
        time.sleep(0.02)
    assert marker.exists(), f"{tag}: the client did not get as far as closing its copy: {output(client)}"
    topo._ip("-n", topo.world, "addr", "add", f"{addr}/32", "dev", "lo")
    server = topo.popen(topo.world, [PY, "-c", SERVER, addr, port])
    topo.wait_port(topo.world, port, proc=server)
    client.wait(timeout=30)
    out, err = output(client)
    topo.stop(server)
    lines = out.strip().splitlines()
    assert client.returncode == 0 and lines, f"{tag}: client failed: {out} {err}"
    return json.loads(lines[-1]), err


def test_copy_closed_during_connect_keeps_its_send_buffer(topo, ins):
    direct, _ = _one(topo, lambda argv: topo.popen(topo.ins, argv), "10.77.9.21", "direct")
    assert direct["writable"] and direct["error"] == 0, direct
    assert direct["first_send"] >= 65536, f"the kernel's own first send took only {direct}"
    got, err = _one(topo, ins.popen, "10.77.9.22", "mwrun")
    san_check(err, "client under mwrun")
    assert got["writable"] and got["error"] == 0, got
    # The connect's small send buffer (about 4.6 KB) would take a few KB at most.
    assert got["first_send"] >= 65536, (
        f"under mwrun the first send took {got['first_send']} bytes, directly {direct['first_send']}")
