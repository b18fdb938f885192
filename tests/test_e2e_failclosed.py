"""(d) Isolation fails closed: a program that makes the socket/connect system
calls itself (no libc wrapper, or a static binary the shim cannot be loaded
into) reaches world only through mwinsd: mwrun's supervisor (src/run/sup.c)
carries its TCP socket.  What the supervisor does not carry fails closed
(tests/test_static_tcp.py: a static program's UDP).  The same binary run
directly in ns ins connects too."""

import time

import pytest

from conftest import PY, HELPERS, _read


@pytest.fixture(scope="module")
def sink(topo):
    port = topo.port()
    log = topo.tmpdir / "sink.log"
    log.touch()
    p = topo.popen(topo.world, [PY, HELPERS / "tcpsink.py", "--port", port, "--log", log])
    topo.wait_port(topo.world, port, proc=p)

    class S:
        pass
    s = S()
    s.port, s.log, s.proc = port, log, p
    s.accepts = lambda: [l for l in _read(log).splitlines() if l.startswith("accept")]
    return s


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
@pytest.mark.parametrize("family", [4, 6])
def test_raw_connect_fails_closed(topo, ins, sink, helper_bin, static, family):
    prog = helper_bin("rawconnect", static=static)
    target = topo.world4 if family == 4 else topo.world6
    before = len(sink.accepts())

    # through mwinsd: it made the connection, for this program
    r = ins.run([prog, target, sink.port], timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "connected", (r.returncode, r.stdout, r.stderr)
    deadline = time.monotonic() + 5
    while len(sink.accepts()) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sink.accepts()) == before + 1, "the carried connection did not reach world"
    before += 1

    # control: the very same binary connects when run directly in ns ins
    r = topo.run(topo.ins, [prog, target, sink.port], timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "connected", (r.returncode, r.stdout, r.stderr)
    deadline = time.monotonic() + 5
    while len(sink.accepts()) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sink.accepts()) == before + 1, "the control connection did not reach world"
