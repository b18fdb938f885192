"""Static programs' TCP calls, carried by mwrun's supervisor (src/run/sup.c).

A TCP client and server built statically (glibc -static, and musl-gcc) make their socket calls with the
raw instruction: no preload sees them.  Under mwrun their socket, connect, bind, listen, accept,
getsockname, getpeername, getsockopt, setsockopt and shutdown are trapped by the gate's filter and
carried through mwinsd on carriers.  The program prints each call's outcome; run directly (the kernel is
the oracle) and under mwrun, the outputs must be the same, and mwinsd's records must name the program.

    [app: static_tcp under mwrun] --carriers--> [mwinsd in ins] --veth--> [world: echo server]
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import BUILD, HELPERS, PY, ins_with_event_log, need

ECHO = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
def serve(c):
    data = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        data += b
    c.sendall(b"echo: " + data)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def build_static(compiler, out):
    src = HELPERS / "static_tcp.c"
    r = subprocess.run([compiler, "-static", "-O1", "-Wall", "-Wextra", "-o", str(out), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def static_bins():
    outdir = BUILD / "tests"
    outdir.mkdir(parents=True, exist_ok=True)
    bins = {"glibc": build_static(need("gcc"), outdir / "static_tcp_glibc")}
    bins["musl"] = build_static(need("musl-gcc"), outdir / "static_tcp_musl")
    return bins


@pytest.fixture(scope="module")
def ins(topo, request):
    """mwinsd with an event log, which records every connection with its process."""
    return ins_with_event_log(topo, request)


@pytest.fixture(scope="module")
def echo(topo):
    port = topo.port()
    p = topo.popen(topo.world, [PY, "-c", ECHO, str(port)])
    topo.wait_port(topo.world, port, proc=p)
    return port


def is_static(path):
    r = subprocess.run(["file", "-L", str(path)], capture_output=True, text=True)
    return "statically linked" in r.stdout or "static-pie" in r.stdout


@pytest.mark.parametrize("libc", ["glibc", "musl"])
@pytest.mark.parametrize("family", [4, 6])
def test_static_client_same_as_kernel(topo, ins, static_bins, echo, libc, family):
    exe = static_bins[libc]
    if shutil.which("file"):
        assert is_static(exe), f"{exe} is not static"
    host = topo.world4 if family == 4 else topo.world6
    closed = topo.port()
    direct = topo.run(topo.world, [exe, host, echo, closed], timeout=60)
    assert direct.returncode == 0, direct.stderr
    under = ins.run([exe, host, echo, closed], timeout=60)
    assert under.returncode == 0, (under.stdout, under.stderr)
    assert "reply: echo: hello mwcomms" in direct.stdout, direct.stdout
    assert under.stdout == direct.stdout, f"direct:\n{direct.stdout}\nunder mwrun:\n{under.stdout}\n{under.stderr}"


@pytest.mark.parametrize("libc", ["glibc", "musl"])
@pytest.mark.parametrize("family", [4, 6])
def test_static_server_same_as_kernel(topo, ins, static_bins, libc, family):
    """bind, listen, accept (non-blocking, and blocking until a child connects), the names of both ends."""
    exe = static_bins[libc]
    direct = topo.run(topo.ins, [exe, "server", family], timeout=60)
    assert direct.returncode == 0, direct.stderr
    assert "blocking accept: ok" in direct.stdout, direct.stdout
    under = ins.run([exe, "server", family], timeout=60)
    assert under.returncode == 0, (under.stdout, under.stderr)
    assert under.stdout == direct.stdout, f"direct:\n{direct.stdout}\nunder mwrun:\n{under.stdout}\n{under.stderr}"


def test_static_client_twice_in_a_row(topo, ins, static_bins, echo):
    """Two static processes one after the other, from a shell that never spoke to mwinsd: when the first
    ends, mwinsd frees the group, and the second gets a new one with a new page, which the supervisor
    must map instead of reading the old one."""
    exe = static_bins["glibc"]
    closed = topo.port()
    direct = topo.run(topo.world, [exe, topo.world4, echo, closed], timeout=60)
    under = ins.run(["sh", "-c", f"{exe} {topo.world4} {echo} {closed} && {exe} {topo.world4} {echo} {closed}"],
                    timeout=60)
    assert under.returncode == 0, (under.stdout, under.stderr)
    assert under.stdout == direct.stdout * 2, f"direct:\n{direct.stdout}\nunder mwrun, twice:\n{under.stdout}"


def test_static_client_flows_name_the_program(topo, ins, static_bins, echo):
    """mwinsd's flow records carry the static program's exe and pid, not mwrun's init that spoke for it."""
    exe = static_bins["glibc"]
    r = ins.run([exe, topo.world4, echo, topo.port()], timeout=60)
    assert r.returncode == 0, r.stderr
    mine = []
    for _ in range(50):
        events = [json.loads(l) for l in ins.event_log.read_text().splitlines() if l.startswith("{")]
        mine = [e for e in events if e.get("id.resp_p") == echo and "proc.exe" in e]
        if mine:
            break
        time.sleep(0.1)
    assert mine, f"no record of a connection to port {echo}"
    names = {b.name for b in static_bins.values()}
    assert all(os.path.basename(e["proc.exe"]) in names for e in mine), mine
    assert any(os.path.basename(e["proc.exe"]) == exe.name for e in mine), mine
    assert all(e["proc.pid"] > 1 and e["proc.vpid"] > 1 for e in mine), mine


def test_static_udp_not_carried_fails_closed(topo, ins, static_bins, echo):
    """What the supervisor does not carry (UDP, for now) reaches the command's own namespace, which has no
    route out: it fails closed, as every raw call did before the supervisor."""
    exe = static_bins["glibc"]
    direct = topo.run(topo.world, [exe, "udp", topo.world4, echo], timeout=30)
    assert direct.stdout.strip() == "udp sendto: ok", direct.stdout
    under = ins.run([exe, "udp", topo.world4, echo], timeout=30)
    assert under.stdout.strip() == "udp sendto: Network is unreachable", (under.stdout, under.stderr)
