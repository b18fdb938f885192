"""fork and exec servers under mwrun (issue 3), loaded by clients in world with
every reply checked:

- python's socketserver.ForkingTCPServer: one forked child per connection,
  serving the socket accept() gave the parent (tests/helpers/forkserver.py);
- socat TCP-LISTEN:...,fork EXEC:..., inetd style: each connection goes to an
  exec'd program, either relayed by socat's forked child or (`nofork`) handed
  over as the exec'd program's stdin/stdout (tests/helpers/inetd_child.py).

nginx's master + workers is in test_e2e_servers.py."""

import json
import time

import pytest

from conftest import HELPERS, PY, _read, need, output, san_check

CONNS = 40


def addr(topo, side, family):
    if side == "world":
        return topo.world4 if family == 4 else topo.world6
    return topo.ins4 if family == 4 else topo.ins6


def load(topo, host, port, conns=CONNS, parallel=8, size=200000, mode="framed"):
    r = topo.run(topo.world, [PY, HELPERS / "echoload.py", "--host", host, "--port", port, "--conns", conns,
                              "--parallel", parallel, "--size", size, "--mode", mode, "--timeout", 120],
                 timeout=180)
    res = None
    for line in reversed(r.stdout.splitlines()):
        if line.startswith("{"):
            res = json.loads(line)
            break
    assert r.returncode == 0 and res, f"clients in world failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert res["ok"] == conns and res["failed"] == 0, res
    return res


@pytest.mark.parametrize("family", [4, 6])
def test_forking_tcp_server(topo, ins, family):
    port = topo.port()
    log = topo.tmpdir / f"forkserver-{port}.log"
    srv = ins.popen([PY, HELPERS / "forkserver.py", "--port", port, "--log", log])
    try:
        topo.wait_port(topo.ins, port, timeout=15, proc=srv)
        deadline = time.monotonic() + 10
        while "listening" not in output(srv)[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        server_pid = output(srv)[0].split()[2]

        res = load(topo, addr(topo, "ins", family), port)
        pids = res["tags"]
        # each connection was served by a forked child, never by the server itself
        assert len(pids) == CONNS and server_pid not in pids, (server_pid, pids)
        assert len(set(pids)) >= 2, f"one process served everything: {set(pids)}"

        # every child logged the world peer (getpeername on the inherited socket) and the bytes it got
        deadline = time.monotonic() + 10
        while True:
            served = [l.split() for l in _read(log).splitlines() if l.startswith("served ")]
            if len(served) >= CONNS or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(served) == CONNS, (_read(log), output(srv))
        assert {s[2] for s in served} == {addr(topo, "world", family)}, served[:3]
        assert {s[3] for s in served} == {"200000"}
        assert sorted(s[1] for s in served) == sorted(pids)

        # a second round on the same listener still works (the children's exits
        # closed only their copies)
        load(topo, addr(topo, "ins", family), port, conns=8, parallel=4, size=50000)

        # the children are gone from the registry once they exit (their control
        # connections end with them)
        deadline = time.monotonic() + 15
        while True:
            left = set(pids) & set(ins.clients())
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not left, f"exited children still listed in the registry: {sorted(left)[:10]}"
        assert srv.poll() is None, "the forking server died"
    finally:
        topo.stop(srv)
    san_check(output(srv)[1], "ForkingTCPServer under mwrun")


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("handoff", ["fork", "nofork"])
def test_socat_inetd(topo, ins, family, handoff):
    socat = need("socat")
    port = topo.port()
    listen = f"{'TCP-LISTEN' if family == 4 else 'TCP6-LISTEN'}:{port},fork,reuseaddr"
    exe = f"EXEC:{PY} {HELPERS / 'inetd_child.py'}" + (",nofork" if handoff == "nofork" else "")
    srv = ins.popen([socat, listen, exe])
    try:
        topo.wait_port(topo.ins, port, timeout=15, proc=srv)
        res = load(topo, addr(topo, "ins", family), port, conns=24, parallel=6, size=150000)
        want = addr(topo, "world", family)
        for tag in res["tags"]:
            peer, env = tag.split(",")
            # socat's accept() saw the world client (it puts that in $SOCAT_PEERADDR)
            assert env == want, res["tags"]
            if handoff == "nofork":
                # the exec'd program holds the connection itself and sees its peer
                assert peer == want, res["tags"]
            else:
                assert peer == "-", res["tags"]
        if handoff == "nofork":
            # stdin of the exec'd program is an INET stream socket, not the carrier's AF_UNIX
            err = output(srv)[1]
            fams = {l.split()[1] for l in err.splitlines() if l.startswith("fd0 family=")}
            assert fams == {f"family={10 if family == 6 else 2}"}, err[-2000:]
        assert srv.poll() is None, "socat died"
    finally:
        topo.stop(srv)
    san_check(output(srv)[1], "socat under mwrun")


def test_socat_exec_cat(topo, ins):
    """inetd style with a plain byte stream: `cat` exec'd on the connection echoes 1 MB per connection."""
    socat = need("socat")
    port = topo.port()
    srv = ins.popen([socat, f"TCP6-LISTEN:{port},fork,reuseaddr", "EXEC:cat,nofork"])
    try:
        topo.wait_port(topo.ins, port, timeout=15, proc=srv)
        for family in (4, 6):
            load(topo, addr(topo, "ins", family), port, conns=12, parallel=4, size=1000000, mode="echo")
        assert srv.poll() is None, "socat died"
    finally:
        topo.stop(srv)
