"""The event loops real programs use (issue 3), each under mwrun against peers
in world, and as servers under mwrun with clients in world: python asyncio
(tests/helpers/aio_echo.py), libevent bufferevents (tests/helpers/evecho.c,
compiled here into BUILD/tests/), and node's `http` server and client
(tests/helpers/nodehttp.js).  Every byte is checked; counts and times are
bounded."""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import BUILD, HELPERS, IN_CI, PY, output, san_check

CONNS = 16


def family_addr(topo, side, family):
    if side == "world":
        return topo.world4 if family == 4 else topo.world6
    return topo.ins4 if family == 4 else topo.ins6


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON summary in:\n{text[-3000:]}")


def check_run(r, what):
    assert r.returncode == 0, (f"{what} failed ({r.returncode})\nstdout:\n{r.stdout[-3000:]}\n"
                               f"stderr:\n{r.stderr[-3000:]}")
    san_check(r.stderr, what)


def wait_lines(proc, prefix, count, timeout=10):
    """The lines of proc's stdout that start with prefix, once there are count of them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in output(proc)[0].splitlines() if l.startswith(prefix)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def unmap(addr):
    return addr[7:] if addr.startswith("::ffff:") else addr


def echoload(topo, host, port, conns=CONNS, size=300000, mode="echo"):
    r = topo.run(topo.world, [PY, HELPERS / "echoload.py", "--host", host, "--port", port, "--conns", conns,
                              "--parallel", 8, "--size", size, "--mode", mode, "--timeout", 90], timeout=150)
    check_run(r, "echoload from world")
    res = last_json(r.stdout)
    assert res["ok"] == conns and res["failed"] == 0, res
    return res


# ---------------------------------------------------------------- python asyncio

def aio_server_check(topo, srv, peer, conns, size):
    lines = wait_lines(srv, "conn ", conns)
    assert len(lines) == conns, f"the asyncio server logged {len(lines)} of {conns} connections:\n" + \
        "\n".join(output(srv))
    for l in lines:
        _, addr, _, n, _ = l.split()
        assert unmap(addr) == peer and int(n) == size, l


@pytest.mark.parametrize("family", [4, 6])
def test_asyncio_server_under_mwrun(topo, ins, family):
    port = topo.port()
    srv = ins.popen([PY, HELPERS / "aio_echo.py", "server", "--port", port])
    try:
        topo.wait_port(topo.ins, port, timeout=15, proc=srv)
        host = family_addr(topo, "ins", family)
        # a plain threaded client, then an asyncio client, both in world
        echoload(topo, host, port, size=300000)
        r = topo.run(topo.world, [PY, HELPERS / "aio_echo.py", "client", "--host", host, "--port", port,
                                  "--conns", CONNS, "--size", 1000000, "--timeout", 90], timeout=150)
        check_run(r, "asyncio client in world")
        res = last_json(r.stdout)
        assert res["ok"] == CONNS and res["bytes"] == CONNS * 1000000, res
        lines = wait_lines(srv, "conn ", 2 * CONNS)
        assert len(lines) == 2 * CONNS, output(srv)
        sizes = sorted(int(l.split()[3]) for l in lines)
        assert sizes == [300000] * CONNS + [1000000] * CONNS, sizes
        assert {unmap(l.split()[1]) for l in lines} == {family_addr(topo, "world", family)}
        assert srv.poll() is None, "the asyncio server died"
    finally:
        topo.stop(srv)
    san_check(output(srv)[1], "asyncio server under mwrun")


@pytest.mark.parametrize("family", [4, 6])
def test_asyncio_client_under_mwrun(topo, ins, family):
    port = topo.port()
    srv = topo.popen(topo.world, [PY, HELPERS / "aio_echo.py", "server", "--port", port])
    try:
        topo.wait_port(topo.world, port, proc=srv)
        r = ins.run([PY, HELPERS / "aio_echo.py", "client", "--host", family_addr(topo, "world", family),
                     "--port", port, "--conns", CONNS, "--size", 1000000, "--timeout", 90], timeout=150)
        check_run(r, "asyncio client under mwrun")
        res = last_json(r.stdout)
        assert res["ok"] == CONNS and res["bytes"] == CONNS * 1000000, res
        aio_server_check(topo, srv, family_addr(topo, "ins", family), CONNS, 1000000)
    finally:
        topo.stop(srv)


def test_asyncio_both_under_mwrun(topo, ins):
    """Server and client each under its own mwrun, meeting at mwinsd's address."""
    port = topo.port()
    srv = ins.popen([PY, HELPERS / "aio_echo.py", "server", "--port", port])
    try:
        topo.wait_port(topo.ins, port, timeout=15, proc=srv)
        r = ins.run([PY, HELPERS / "aio_echo.py", "client", "--host", topo.ins4, "--port", port,
                     "--conns", 8, "--size", 500000, "--timeout", 90], timeout=150)
        check_run(r, "asyncio client under mwrun")
        res = last_json(r.stdout)
        assert res["ok"] == 8 and res["bytes"] == 8 * 500000, res
        aio_server_check(topo, srv, topo.ins4, 8, 500000)
    finally:
        topo.stop(srv)


# ---------------------------------------------------------------- libevent

@pytest.fixture(scope="module")
def evecho():
    src = HELPERS / "evecho.c"
    out = BUILD / "tests" / "evecho"
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    pc = shutil.which("pkg-config")
    flags = None
    if pc:
        r = subprocess.run([pc, "--cflags", "--libs", "libevent"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            flags = r.stdout.split()
    if flags is None:
        msg = "libevent's development files (pkg-config libevent) are not installed (apt-get install libevent-dev)"
        if IN_CI:
            pytest.fail(msg + " (CI=true: missing tools are failures)")
        pytest.skip(msg)
    out.parent.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    r = subprocess.run([cc, "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o", f"{out}.tmp", str(src), *flags],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"compiling {src} failed:\n{r.stderr}"
    os.replace(f"{out}.tmp", out)
    return out


def evecho_client_check(r, what, conns, size):
    check_run(r, what)
    ok = [l for l in r.stdout.splitlines() if l.startswith("ok ")]
    assert ok and ok[0].split()[1:3] == [str(conns), str(conns * size)], r.stdout


@pytest.mark.parametrize("family", [4, 6])
def test_libevent_server_under_mwrun(topo, ins, evecho, family):
    port = topo.port()
    srv = ins.popen([evecho, "server", port])
    size = 4 * 1024 * 1024 + 3
    try:
        topo.wait_port(topo.ins, port, timeout=15, proc=srv)
        host = family_addr(topo, "ins", family)
        r = topo.run(topo.world, [evecho, "client", host, port, CONNS, size, 90], timeout=150)
        evecho_client_check(r, "libevent client in world", CONNS, size)
        echoload(topo, host, port, size=200000)
        lines = wait_lines(srv, "conn ", 2 * CONNS)
        assert len(lines) == 2 * CONNS, output(srv)
        assert sorted(int(l.split()[3]) for l in lines) == [200000] * CONNS + [size] * CONNS
        assert {unmap(l.split()[1]) for l in lines} == {family_addr(topo, "world", family)}
        assert srv.poll() is None, "the libevent server died"
    finally:
        topo.stop(srv)
    san_check(output(srv)[1], "libevent server under mwrun")


@pytest.mark.parametrize("family", [4, 6])
def test_libevent_client_under_mwrun(topo, ins, evecho, family):
    port = topo.port()
    srv = topo.popen(topo.world, [evecho, "server", port])
    size = 4 * 1024 * 1024 + 3
    try:
        topo.wait_port(topo.world, port, proc=srv)
        r = ins.run([evecho, "client", family_addr(topo, "world", family), port, CONNS, size, 90], timeout=150)
        evecho_client_check(r, "libevent client under mwrun", CONNS, size)
        lines = wait_lines(srv, "conn ", CONNS)
        assert len(lines) == CONNS and {l.split()[1] for l in lines} == {family_addr(topo, "ins", family)}
        assert all(int(l.split()[3]) == size for l in lines), lines
    finally:
        topo.stop(srv)


# ---------------------------------------------------------------- node's http

def need_node():
    path = shutil.which("node") or shutil.which("nodejs")
    if path is None:
        msg = "node (Debian's nodejs) is not installed"
        if IN_CI:
            pytest.fail(msg + " (CI=true: missing tools are failures)")
        pytest.skip(msg)
    return path


def node_client_check(r, what, gets=24, posts=16):
    check_run(r, what)
    res = last_json(r.stdout)
    assert res["ok"] == gets + posts and res["failed"] == 0, res
    assert res["bytes"] > 10 * 1024 * 1024, res
    return res


@pytest.mark.parametrize("family", [4, 6])
def test_node_http_server_under_mwrun(topo, ins, family):
    node = need_node()
    port = topo.port()
    srv = ins.popen([node, HELPERS / "nodehttp.js", "server", port])
    try:
        topo.wait_port(topo.ins, port, timeout=20, proc=srv)
        r = topo.run(topo.world, [node, HELPERS / "nodehttp.js", "client", family_addr(topo, "ins", family),
                                  port, 24, 16, 90], timeout=150)
        res = node_client_check(r, "node http client in world")
        assert res["peers"] == [family_addr(topo, "world", family)], res
        reqs = wait_lines(srv, "req ", 40)
        assert len(reqs) == 40, output(srv)
        assert srv.poll() is None, "the node server died"
    finally:
        topo.stop(srv)
    san_check(output(srv)[1], "node server under mwrun")


@pytest.mark.parametrize("family", [4, 6])
def test_node_http_client_under_mwrun(topo, ins, family):
    node = need_node()
    port = topo.port()
    srv = topo.popen(topo.world, [node, HELPERS / "nodehttp.js", "server", port])
    try:
        topo.wait_port(topo.world, port, timeout=20, proc=srv)
        r = ins.run([node, HELPERS / "nodehttp.js", "client", family_addr(topo, "world", family), port,
                     24, 16, 90], timeout=150)
        res = node_client_check(r, "node http client under mwrun")
        # the server saw the requests come from the INS
        assert res["peers"] == [family_addr(topo, "ins", family)], res
    finally:
        topo.stop(srv)
