"""A real Go program's TCP client calls, carried by mwrun's supervisor (src/run/sup.c).

Go makes its socket calls with raw system calls, out of any preload's reach.  `hey` (Debian's HTTP load
generator, in Go) runs under mwrun against nginx in world, keep-alive and not: every request answered, no
error, and mwinsd's records name hey (its exe and pid) for every connection; and under preemption
(SIGURG), 2,000 connections are 2,000 connections at nginx.

    [app: hey under mwrun] --carriers--> [mwinsd in ins] --veth--> [world: nginx]
"""

import json
import os
import re
import time

import pytest

from conftest import ins_with_event_log, need

NGINX_CONF = """
daemon off;
master_process off;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format conn '$connection';
    access_log {p}/access.log conn;
    keepalive_timeout 30;
    keepalive_requests 100000;
    client_body_temp_path {p}/tmp;
    server {{
        listen {port} backlog=512;
        listen [::]:{port} ipv6only=on;
        root {p}/html;
        location / {{ }}
    }}
}}
"""


@pytest.fixture(scope="module")
def ins(topo, request):
    """mwinsd with an event log, which records every connection with its process."""
    return ins_with_event_log(topo, request)


@pytest.fixture(scope="module")
def nginx(topo):
    exe = need("nginx")
    p = topo.tmpdir / "nginx-go"
    (p / "html").mkdir(parents=True)
    (p / "tmp").mkdir()
    (p / "html" / "index.html").write_text("mwcomms and hey\n" * 64)
    port = topo.port()
    (p / "nginx.conf").write_text(NGINX_CONF.format(p=p, port=port))
    proc = topo.popen(topo.world, [exe, "-p", p, "-c", p / "nginx.conf", "-e", p / "error.log"])
    topo.wait_port(topo.world, port, proc=proc)
    return port


def access_log_lines(topo):
    path = topo.tmpdir / "nginx-go" / "access.log"
    return path.read_text().split() if path.exists() else []


def hey_summary(text):
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", text)}
    errors = "Error distribution" in text
    return codes, errors


def conn_records(ins, port):
    events = [json.loads(l) for l in ins.event_log.read_text().splitlines() if l.startswith("{")]
    return [e for e in events if e.get("id.resp_p") == port and "proc.exe" in e]


@pytest.mark.parametrize("keepalive", [True, False], ids=["keepalive", "no-keepalive"])
def test_hey_against_nginx(topo, ins, nginx, keepalive):
    hey = need("hey")
    n, c = 400, 8
    argv = [hey, "-n", n, "-c", c, "-t", 20]
    if not keepalive:
        argv.append("-disable-keepalive")
    r = ins.run(argv + [f"http://{topo.world4}:{nginx}/index.html"], timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    codes, errors = hey_summary(r.stdout)
    assert codes == {200: n} and not errors, r.stdout
    # Every connection in the records, each naming hey.
    recs = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        recs = conn_records(ins, nginx)
        if recs:
            break
        time.sleep(0.1)
    assert recs, "no connection to nginx in mwinsd's records"
    if not keepalive:
        # one connection per request, each one closed and recorded
        deadline = time.monotonic() + 10
        while len({e["uid"] for e in recs if e.get("event") == "closed"}) < n and time.monotonic() < deadline:
            time.sleep(0.1)
            recs = conn_records(ins, nginx)
        closed = {e["uid"] for e in recs if e.get("event") == "closed"}
        assert len(closed) >= n, f"{len(closed)} closed connections recorded for {n} requests"
    assert all(os.path.basename(e["proc.exe"]) == "hey" for e in recs), {e["proc.exe"] for e in recs}
    assert all(e["proc.vpid"] > 1 for e in recs), recs[:3]


def test_hey_over_ipv6(topo, ins, nginx):
    hey = need("hey")
    r = ins.run([hey, "-n", 50, "-c", 2, "-t", 20, f"http://[{topo.world6}]:{nginx}/index.html"], timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    codes, errors = hey_summary(r.stdout)
    assert codes == {200: 50} and not errors, r.stdout


def test_hey_preempted_loses_and_doubles_nothing(topo, ins, nginx):
    """2,000 connections from 50 goroutines at once, with the garbage collector preempting goroutines all the
    while (GOGC=1: Go stops running goroutines with SIGURG; directly, strace counts a SIGURG every 10 to 20
    connections): each request reaches nginx exactly once, on a connection of its own, so no connect was
    lost or made twice."""
    hey = need("hey")
    n = 2000
    before = access_log_lines(topo)
    env = dict(os.environ, GOGC="1")
    r = ins.run([hey, "-n", n, "-c", 50, "-t", 30, "-disable-keepalive",
                 f"http://{topo.world4}:{nginx}/index.html"], timeout=120, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    codes, errors = hey_summary(r.stdout)
    assert codes == {200: n} and not errors, r.stdout
    deadline = time.monotonic() + 5
    lines = []
    while time.monotonic() < deadline:
        lines = access_log_lines(topo)[len(before):]
        if len(lines) >= n:
            break
        time.sleep(0.1)
    assert len(lines) == n, f"nginx logged {len(lines)} requests for {n}"
    assert len(set(lines)) == n, f"{n} requests came on {len(set(lines))} connections"
