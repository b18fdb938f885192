"""Node.js under mwrun: its bundled libuv makes some system calls itself (tests/helpers/nodeparts.js).

    [ns app: node under mwrun]  --carriers-->  [ns ins: mwinsd; node directly, the oracle]  ==veth==
    [ns world: a UDP echo (python), the blackhole route's sink, curl]

Each piece runs directly in ns ins first (it must pass there: the kernel is the oracle), then under mwrun.
"""

import shutil
import time

import pytest

from conftest import HELPERS, PY, output, san_check

NODE_PARTS = HELPERS / "nodeparts.js"

UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(120)
while True:
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        break
    s.sendto(d, a)
"""


def need_node():
    path = shutil.which("node") or shutil.which("nodejs")
    if not path:
        pytest.fail("node (Debian's nodejs) is not installed: scripts/deps installs it")
    return path


def both(topo, ins, argv, timeout=60):
    """argv directly in ns ins, then under mwrun: both results."""
    direct = topo.run(topo.ins, argv, timeout=timeout)
    under = ins.run(argv, timeout=timeout)
    san_check(under.stderr, "node under mwrun")
    return direct, under


def test_unix_server_after_a_tcp_server(topo, ins):
    """libuv closes with syscall(SYS_close): the next descriptor at that number must be what it is."""
    node = need_node()
    d, u = both(topo, ins, [node, NODE_PARTS, "unixafter", topo.tmpdir])
    assert d.stdout.startswith("ok"), f"directly: {d.stdout}{d.stderr}"
    assert u.stdout.startswith("ok"), f"under mwrun: {u.stdout}{u.stderr}"


def test_dgram_sender_gets_every_callback(topo, ins):
    """5,000 datagrams to a receiver that never reads (the blackhole): every send callback comes."""
    node = need_node()
    d, u = both(topo, ins, [node, NODE_PARTS, "dgram", 5000, topo.blackhole4, 9])
    assert d.stdout.strip() == "ok callbacks 5000 errors 0", f"directly: {d.stdout}{d.stderr}"
    assert u.stdout.strip() == "ok callbacks 5000 errors 0", f"under mwrun: {u.stdout}{u.stderr}"


@pytest.mark.parametrize("family", [4, 6])
def test_udp_unconnected_to_world(topo, ins, family):
    node = need_node()
    host = topo.world4 if family == 4 else topo.world6
    port = topo.port()
    echo = topo.popen(topo.world, [PY, "-c", UDP_ECHO, host, port])
    try:
        topo.wait_port(topo.world, port, proto="udp", proc=echo)
        d, u = both(topo, ins, [node, NODE_PARTS, "udpecho", 50, host, port])
        assert d.stdout.strip() == f"ok echoed 50 from {host}", f"directly: {d.stdout}{d.stderr}"
        assert u.stdout.strip() == f"ok echoed 50 from {host}", f"under mwrun: {u.stdout}{u.stderr}"
    finally:
        topo.stop(echo)


def test_fork_passes_a_server_handle(topo, ins):
    """child_process.fork, the listening handle sent over IPC, and the child accepting: world's curl gets the
    child's answer."""
    node = need_node()
    for how in ("direct", "mwrun"):
        port = topo.port()
        argv = [node, NODE_PARTS, "fork", port]
        p = topo.popen(topo.ins, argv) if how == "direct" else ins.popen(argv)
        try:
            topo.wait_port(topo.ins, port, proc=p)
            deadline = time.monotonic() + 15
            while "ok serving" not in output(p)[0] and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "ok serving" in output(p)[0], f"{how}: the child did not take the server: {output(p)}"
            r = topo.run(topo.world, ["curl", "-sS", "--max-time", "10", f"telnet://{topo.ins4}:{port}"],
                         timeout=30)
            assert r.stdout.startswith("child "), f"{how}: {r.stdout}{r.stderr}"
        finally:
            topo.stop(p)
