"""Telemetry and policy, end to end (docs/telemetry.md): real programs under mwrun, a real mwinsd with
--event-log, --ipfix, --metrics and --policy, real collectors (nfcapd/nfdump) and a real world host.

Every check compares a record with what the test really did: the bytes it sent and received, the port the
program saw, its pid, the errno the program got.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, HELPERS, PY, Ins
from test_ipfix_collector import Nfcapd, nfdump_json, need_tool

EXCHANGE = HELPERS / "exchange.py"


def wait_until(fn, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(interval)
    return bool(fn())


class Events:
    """A consumer of the event stream (the socket the registry's netflow file names)."""

    def __init__(self, ins):
        path = (ins.sock_dir / "netflow").read_text().strip()
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.s.settimeout(0.2)
        self.buf = b""
        self.events = []

    def poll(self):
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    break
                self.buf += b
        except socket.timeout:
            pass
        *lines, self.buf = self.buf.split(b"\n")
        self.events += [json.loads(l) for l in lines if l]
        return self.events

    def wait(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [e for e in self.poll() if pred(e)]
            if hits:
                return hits
        return []

    def close(self):
        self.s.close()


def ctl(ins, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(ins.sock_dir / "ctl"))
    s.sendall(json.dumps(req).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1 << 20)
        if not b:
            break
        buf += b
    s.close()
    return json.loads(buf)


@pytest.fixture(scope="module")
def exserver(topo):
    """exchange.py servers in world: port -> reply size."""
    ports = {}
    for reply in (70000, 1234):
        port = topo.port()
        p = topo.popen(topo.world, [PY, EXCHANGE, "server", "--port", port, "--reply", reply])
        topo.wait_port(topo.world, port, proc=p)
        ports[reply] = port
    return ports


def start_ins(topo, request, args, env=None):
    i = Ins(topo, args, env)
    i.id = f"tel{len(args)}{os.getpid() % 1000}"
    request.addfinalizer(i.teardown)
    i.start()
    return i


def run_client(ins, host, port, size, **kw):
    r = ins.run([PY, EXCHANGE, "client", host, port, size], timeout=60, **kw)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    assert lines, (r.stdout, r.stderr)
    return json.loads(lines[-1])


# --------------------------------------------------------------------------
# the record, the stream and the log


@pytest.fixture(scope="module")
def tel_ins(topo, request):
    log = topo.tmpdir / "events.log"
    i = start_ins(topo, request, ["--event-log", log, "--event-log-size", "16K", "--event-log-keep", "3"])
    i.event_log = log
    return i


@pytest.mark.parametrize("family", [4, 6])
def test_record_matches_what_was_sent(topo, tel_ins, exserver, family):
    """A connection's closed record carries the tuple the program saw, its exact bytes each way, SF, a
    history, the program's pid/exe/argv, and the policy decision; attempt and established came first."""
    ev = Events(tel_ins)
    host = topo.world4 if family == 4 else topo.world6
    out = run_client(tel_ins, host, exserver[70000], 123457)
    assert out["error"] is None and out["received"] == 70000, out
    lport = out["local"][1]
    closed = ev.wait(lambda e: e["event"] == "closed" and e.get("id.orig_p") == lport)
    ev.close()
    assert closed, f"no closed event for local port {lport}: {ev.events[-5:]}"
    c = closed[0]
    want = {
        "id.resp_h": host if family == 4 else "fd77::2", "id.resp_p": exserver[70000], "proto": "tcp",
        "direction": "outbound", "orig_bytes": 123457, "resp_bytes": 70000, "conn_state": "SF",
        "end_reason": "closed", "proc.vpid": out["pid"], "rule": "default", "action": "allow", "mode": "enforce",
    }
    have = {k: c.get(k) for k in want}
    assert have == want, c
    assert os.path.basename(c["proc.exe"]).startswith("python3"), c["proc.exe"]
    assert c["proc.argv"][1:3] == [str(EXCHANGE), "client"], c["proc.argv"]
    assert re.fullmatch(r"C[0-9A-Za-z]{17}", c["uid"]) and c["community_id"].startswith("1:"), c
    assert c["history"].startswith("CE") and "D" in c["history"] and "d" in c["history"], c["history"]
    kinds = [e["event"] for e in ev.events if e.get("uid") == c["uid"]]
    assert kinds[:2] == ["attempt", "established"] and kinds[-1] == "closed", kinds
    seqs = [e["seq"] for e in ev.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


def test_community_id_is_the_standard_one(topo, tel_ins, exserver):
    """The community_id equals Community ID v1 computed here independently from the record's tuple."""
    import base64
    import hashlib
    import ipaddress

    ev = Events(tel_ins)
    out = run_client(tel_ins, topo.world4, exserver[1234], 10)
    closed = ev.wait(lambda e: e["event"] == "closed" and e.get("id.orig_p") == out["local"][1])
    ev.close()
    assert closed
    c = closed[0]
    a = (ipaddress.ip_address(c["id.orig_h"]).packed, c["id.orig_p"])
    b = (ipaddress.ip_address(c["id.resp_h"]).packed, c["id.resp_p"])
    lo, hi = sorted([a, b])
    data = b"\0\0" + lo[0] + hi[0] + bytes([6, 0]) + lo[1].to_bytes(2, "big") + hi[1].to_bytes(2, "big")
    assert c["community_id"] == "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_refused_connect_is_rej(topo, tel_ins):
    """A connect to a closed port: the program gets ECONNREFUSED, the record says REJ / refused."""
    ev = Events(tel_ins)
    port = topo.port()
    out = run_client(tel_ins, topo.world4, port, 1)
    assert out["error"] == "ECONNREFUSED", out
    closed = ev.wait(lambda e: e["event"] == "closed" and e.get("id.resp_p") == port)
    ev.close()
    assert closed and closed[0]["conn_state"] == "REJ" and closed[0]["end_reason"] == "refused" \
        and closed[0]["errno"] == "ECONNREFUSED", closed


def test_udp_flow_record(topo, tel_ins):
    """Datagrams to one destination are one UDP flow with their exact payload bytes."""
    ev = Events(tel_ins)
    port = topo.port()
    r = tel_ins.run([PY, EXCHANGE, "udp", topo.world4, port, 300, "--count", 5], timeout=30)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["error"] is None, out
    ctl_flows = ctl(tel_ins, {"cmd": "flows"})
    assert ctl_flows["ok"]
    live = [f for f in ctl_flows["flows"] if f["proto"] == "udp" and f["id.resp_p"] == port]
    # the program has exited, so its socket closed: the flow ended
    closed = ev.wait(lambda e: e["event"] == "closed" and e["proto"] == "udp" and e.get("id.resp_p") == port)
    ev.close()
    assert closed, (live, ev.events[-3:])
    c = closed[0]
    assert (c["orig_bytes"], c["orig_ops"], c["direction"], c["proc.vpid"]) == (1500, 5, "outbound", out["pid"]), c


def test_event_log_rotates_and_loses_nothing(topo, tel_ins, exserver):
    """With a 16K limit the log rotates into .1, .2, .3; every line is JSON and, across the files, the
    sequence numbers have no gap from the first kept line on."""
    for _ in range(12):
        run_client(tel_ins, topo.world4, exserver[1234], 10)
    time.sleep(0.5)
    log = tel_ins.event_log
    files = [log.with_name(log.name + f".{i}") for i in (3, 2, 1)] + [log]
    present = [f for f in files if f.exists()]
    assert log.with_name(log.name + ".1").exists(), sorted(p.name for p in log.parent.iterdir())
    assert not log.with_name(log.name + ".4").exists(), "kept more than --event-log-keep 3"
    seqs = []
    for f in present:
        assert f.stat().st_size <= 16 * 1024 + 4096, f"{f} is {f.stat().st_size} bytes"
        for line in f.read_text().splitlines():
            seqs.append(json.loads(line)["seq"])
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a reorder in the rotated log"


def test_slow_consumer_never_slows_the_data_path(topo, tel_ins, exserver):
    """A consumer that never reads: connections go on, and once it reads it is told what it missed."""
    path = (tel_ins.sock_dir / "netflow").read_text().strip()
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(path)
    try:
        # 7,500 events of ~900 bytes overflow the 4 MiB queue; a program's connections must not notice
        r = tel_ins.run([PY, "-c", f"""
import socket
for i in range(2500):
    s = socket.create_connection(("{topo.world4}", {exserver[1234]}))
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536): pass
    s.close()
print("done")
"""], timeout=120)
        assert "done" in r.stdout, r.stderr
        m = ctl(tel_ins, {"cmd": "metrics"})["text"]
        dropped = int(re.search(r"^mwcomms_events_dropped_total (\d+)$", m, re.M).group(1))
        assert dropped > 0, "4 MiB of events fit a consumer that never read?"
        stuck.settimeout(5)
        got = b""
        deadline = time.monotonic() + 30
        while b'"dropped"' not in got and time.monotonic() < deadline:
            try:
                b = stuck.recv(1 << 20)
            except socket.timeout:
                run_client(tel_ins, topo.world4, exserver[1234], 1)  # the next event carries the report
                continue
            if not b:
                break
            got += b
            if len(got) > (8 << 20):
                got = got[-(1 << 20):]
        assert b'"event":"dropped"' in got, "the consumer was never told it missed events"
    finally:
        stuck.close()


# --------------------------------------------------------------------------
# IPFIX to a real collector, metrics


class WorldNfcapd(Nfcapd):
    """nfcapd on the world host: a collector across the network from mwinsd."""

    def __init__(self, topo, flowdir, logpath):
        super().__init__(flowdir, logpath)
        self.topo = topo

    def start(self):
        exe = need_tool("nfcapd")
        self.port = self.topo.port()
        log = open(self.logpath, "w")
        self.proc = subprocess.Popen(self.topo.nsexec(self.topo.world, [
            exe, "-w", self.flowdir, "-b", self.topo.world4, "-p", self.port, "-t", "2"]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if not wait_until(lambda: "Startup nfcapd." in self.log(), 10):
            pytest.fail(f"nfcapd did not start:\n{self.log()}")


def test_ipfix_to_nfcapd(topo, request, exserver):
    """mwinsd exports each flow to nfcapd on the world host; nfdump shows each flow's tuple and both byte
    counts exactly as the programs sent and received them."""
    need_tool("nfdump")
    flowdir = topo.tmpdir / "flows"
    flowdir.mkdir()
    cap = WorldNfcapd(topo, flowdir, topo.tmpdir / "nfcapd.log")
    cap.start()
    request.addfinalizer(cap.stop)
    metrics_port = topo.port()
    i = start_ins(topo, request, ["--ipfix", f"{topo.world4}:{cap.port}", "--metrics",
                                  f"127.0.0.1:{metrics_port}"])
    sent = []
    for host, size in ((topo.world4, 5000), (topo.world6, 77777), (topo.world4, 1)):
        out = run_client(i, host, exserver[70000], size)
        assert out["error"] is None and out["received"] == 70000, out
        sent.append((host, out["local"][1], size))
    deadline = time.monotonic() + 20
    recs = []
    while time.monotonic() < deadline:
        recs = nfdump_json(flowdir)
        if len(recs) >= len(sent):
            break
        time.sleep(0.5)
    got = {(r.get("src4_addr") or r.get("src6_addr"), int(r["src_port"])): r for r in recs}
    for host, lport, size in sent:
        src = topo.ins4 if ":" not in host else topo.ins6
        r = got.get((src, lport))
        assert r, f"no IPFIX flow from {src}:{lport} in {list(got)}\n{cap.log()}"
        have = (r.get("dst4_addr") or r.get("dst6_addr"), int(r["dst_port"]), int(r["proto"]),
                int(r["in_bytes"]), int(r["out_bytes"]))
        assert have == (host, exserver[70000], 6, size, 70000), r
        assert r["tcp_flags"] == "...A..SF", r
    # metrics: fetched over HTTP inside the INS's namespace
    m = topo.run(topo.ins, ["curl", "-sf", f"http://127.0.0.1:{metrics_port}/metrics"], timeout=10)
    assert m.returncode == 0, m.stderr
    flows_total = int(re.search(r"^mwcomms_flows_total (\d+)$", m.stdout, re.M).group(1))
    records = int(re.search(r"^mwcomms_ipfix_records_total (\d+)$", m.stdout, re.M).group(1))
    connects = int(re.search(r"^mwcomms_connects_total (\d+)$", m.stdout, re.M).group(1))
    assert flows_total == 3 and records == 3 and connects == 3, m.stdout
    nf = topo.run(topo.ins, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                             f"http://127.0.0.1:{metrics_port}/nope"], timeout=10)
    assert nf.stdout == "404", nf.stdout


# --------------------------------------------------------------------------
# policy


POLICY = """# test policy
default allow
mode {mode}
list blocked {listfile}
deny name=no-refused-port op=connect rport={deny_port}
deny name=listed op=connect remote=@blocked
log name=watch-kill-port op=connect rport={kill_port}
kill name=kill-port op=connect rport={kill_port}
deny name=no-udp op=send rport={udp_port}
deny name=no-listen op=listen lport={listen_port}
deny name=short op=connect rport={expire_port} for=10s
throttle name=slow op=connect rport={slow_port} rate=256K
"""


@pytest.fixture(scope="module")
def pol(topo, request, exserver):
    ports = dict(deny_port=topo.port(), kill_port=exserver[70000], udp_port=topo.port(), listen_port=topo.port(),
                 expire_port=exserver[1234], slow_port=topo.port())
    listfile = topo.tmpdir / "blocked.txt"
    listfile.write_text(f"# the blackhole\n{topo.blackhole4}/32\n")
    path = topo.tmpdir / "policy.rules"
    path.write_text(POLICY.format(mode="enforce", listfile=listfile, **ports))
    i = start_ins(topo, request, ["--policy", path])
    i.policy_path, i.ports, i.listfile = path, ports, listfile
    return i


def prog_errno(ins, code):
    r = ins.run([PY, "-c", code], timeout=30)
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else f"no output: {r.stderr[-500:]}"


CONNECT = """
import errno, socket
s = socket.socket()
try:
    s.connect(("{host}", {port})); print("connected")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


def test_deny_gives_econnrefused_and_an_event(topo, pol):
    ev = Events(pol)
    port = pol.ports["deny_port"]
    assert prog_errno(pol, CONNECT.format(host=topo.world4, port=port)) == "ECONNREFUSED"
    d = ev.wait(lambda e: e["event"] == "denied" and e.get("id.resp_p") == port)
    ev.close()
    assert d and d[0]["rule"] == "no-refused-port" and d[0]["errno"] == "ECONNREFUSED" \
        and d[0]["action"] == "deny" and "N" in d[0]["history"], d
    # a list file entry: the blackhole address is denied before any SYN could time out
    assert prog_errno(pol, CONNECT.format(host=topo.blackhole4, port=80)) == "ECONNREFUSED"


def test_kill_rule_resets_after_connect(topo, pol):
    """kill: the connect succeeds, then the program's read sees ECONNRESET; the log rule before it (log
    does not decide) marked the record, and the kill is an event."""
    ev = Events(pol)
    port = pol.ports["kill_port"]
    out = run_client(pol, topo.world4, port, 10)
    # The reset races the program: a send after it fails (ECONNRESET, EPIPE); a send before it succeeds, and
    # then shutdown(SHUT_WR) of a socket that has been reset says ENOTCONN, as the kernel's inet_shutdown does.
    assert out["error"] in ("ECONNRESET", "EPIPE") or (out["error"] == "ENOTCONN" and out["sent"] == 10), out
    k = ev.wait(lambda e: e["event"] == "killed" and e.get("id.resp_p") == port)
    c = ev.wait(lambda e: e["event"] == "closed" and e.get("id.resp_p") == port)
    ev.close()
    assert k and k[0]["by"] == "rule" and k[0]["rule"] == "kill-port", k
    assert c and (c[0]["end_reason"], c[0]["log"], c[0]["conn_state"]) == ("killed", "watch-kill-port", "RSTO"), c


def test_udp_send_deny_is_eperm(topo, pol):
    r = pol.run([PY, EXCHANGE, "udp", topo.world4, pol.ports["udp_port"], 10], timeout=30)
    assert json.loads(r.stdout.strip().splitlines()[-1])["error"] == "EPERM", r.stdout


def test_listen_deny_is_eacces(topo, pol):
    code = f"""
import errno, socket
s = socket.socket()
try:
    s.bind(("0.0.0.0", {pol.ports['listen_port']})); s.listen(); print("listening")
except OSError as e:
    print(errno.errorcode[e.errno])
"""
    assert prog_errno(pol, code) == "EACCES"


def test_rule_expires(topo, pol):
    """for=10s: denied at once, allowed once the rule's time is up and not before.  (10 s so that a slow start
    of the first program cannot outlive the rule; how late the expiry is seen is bounded only by a hang
    guard.)"""
    port = pol.ports["expire_port"]
    t0 = time.monotonic()
    assert ctl(pol, {"cmd": "policy_reload"})["ok"]  # the 10 s start now (not before t0), whatever ran before
    assert prog_errno(pol, CONNECT.format(host=topo.world4, port=port)) == "ECONNREFUSED"
    while True:
        got = prog_errno(pol, CONNECT.format(host=topo.world4, port=port))
        t = time.monotonic()
        if got == "connected":
            break
        assert got == "ECONNREFUSED", got
        assert t - t0 < 60, "the for=10s rule still refuses after 60 s"
        time.sleep(0.5)
    # that connect happened before t; the rule cannot have run out before t0 + 10 s
    assert t - t0 >= 10, f"the for=10s rule was gone {t - t0:.1f} s after it was loaded"


def megabyte_from_world(topo, ins, port):
    """Seconds the program under ins takes to receive 1 MiB from a server in the world on port."""
    p = topo.popen(topo.world, [PY, EXCHANGE, "server", "--port", port, "--reply", 1 << 20])
    topo.wait_port(topo.world, port, proc=p)
    t0 = time.monotonic()
    out = run_client(ins, topo.world4, port, 1)
    assert out["received"] == 1 << 20, out
    return time.monotonic() - t0


def test_throttle_rule_holds_the_rate(topo, pol):
    """rate=256K per flow: 1 MiB from the world takes at least ~3 s (the first 10th of a second is burst)."""
    took = megabyte_from_world(topo, pol, pol.ports["slow_port"])
    assert took >= 3.0, f"1 MiB at 256 KiB/s took {took:.2f} s"


def test_throttle_survives_a_wall_clock_step(topo, request, helper_bin):
    """The wall clock steps back an hour in the middle of a throttled transfer (as an administrator or NTP may
    step it): the throttle keeps its rate and the transfer ends, as with no step.  (On the wall clock the
    token bucket would wait an hour for its next token.)"""
    port = topo.port()
    path = topo.tmpdir / "throttle-step.rules"
    path.write_text(f"default allow\nthrottle name=slow op=connect rport={port} rate=256K\n")
    env = {"LD_PRELOAD": str(helper_bin("clockstep", shared=True)), "CLOCKSTEP_AFTER_MS": "1500",
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    took = megabyte_from_world(topo, start_ins(topo, request, ["--policy", path], env), port)
    assert 3.0 <= took < 20, f"1 MiB at 256 KiB/s across a clock step took {took:.2f} s"


def test_hits_and_reload(topo, pol):
    """Hit counters count; a bad file is refused with its line and the old policy stays; a good one replaces
    it (SIGHUP and the control API)."""
    before = {r["name"]: r["hits"] for r in ctl(pol, {"cmd": "policy"})["rules"]}
    for _ in range(2):
        assert prog_errno(pol, CONNECT.format(host=topo.world4, port=pol.ports["deny_port"])) == "ECONNREFUSED"
    hits = {r["name"]: r["hits"] for r in ctl(pol, {"cmd": "policy"})["rules"]}
    assert hits["no-refused-port"] == before["no-refused-port"] + 2, (before, hits)
    assert hits["listed"] == before["listed"], "a rule that did not match counted a hit"
    good = pol.policy_path.read_text()
    ev = Events(pol)
    pol.policy_path.write_text(good + "deny name=oops op=connect rport=99999\n")
    r = ctl(pol, {"cmd": "policy_reload"})
    nlines = len(good.splitlines()) + 1
    assert not r["ok"] and f"{pol.policy_path}:{nlines}:" in r["error"], r
    e = ev.wait(lambda e: e["event"] == "policy" and "error" in e)
    assert e and f":{nlines}:" in e[0]["error"], ev.events[-3:]
    # the old policy is still in force
    assert prog_errno(pol, CONNECT.format(host=topo.world4, port=pol.ports["deny_port"])) == "ECONNREFUSED"
    # monitor mode through SIGHUP: the same deny now only logs
    pol.policy_path.write_text(good.replace("mode enforce", "mode monitor"))
    pol.proc.send_signal(signal.SIGHUP)
    assert ev.wait(lambda e: e["event"] == "policy" and e.get("rules") == 8), ev.events[-3:]
    port = pol.ports["deny_port"]
    assert prog_errno(pol, CONNECT.format(host=topo.world4, port=port)) == "ECONNREFUSED"  # nobody listens
    c = ev.wait(lambda e: e["event"] == "closed" and e.get("id.resp_p") == port)
    ev.close()
    assert c and (c[0]["action"], c[0]["mode"], c[0]["rule"], c[0]["conn_state"]) == \
        ("deny", "monitor", "no-refused-port", "REJ"), c
    pol.policy_path.write_text(good)
    assert ctl(pol, {"cmd": "policy_reload"})["ok"]


def test_control_api_refuses_bad_requests(pol):
    """Garbage, unknown commands and wrong types get errors; an oversized line closes the connection; the
    daemon goes on serving."""
    for req, frag in ((["not", "an", "object"], "not a JSON object"), ({"cmd": "nope"}, "unknown cmd"),
                      ({"cmd": "kill"}, "needs"), ({"cmd": "kill", "flow": "Cnothere"}, "no flow"),
                      ({"cmd": "block", "cidr": "10.0.0.0/8 exe=x"}, "block needs"),
                      ({"cmd": "quarantine", "pid": "12"}, "needs"), ({"cmd": "throttle", "pid": 1}, "rate")):
        r = ctl(pol, req)
        assert r["ok"] is False and frag in r["error"], (req, r)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(pol.sock_dir / "ctl"))
    try:
        s.sendall(b"x" * (200 * 1024))
    except OSError:
        pass
    try:
        closed = s.recv(100) == b""
    except ConnectionResetError:
        closed = True  # closed with our bytes unread: the kernel resets
    assert closed, "a 200 KB line did not close the connection"
    s.close()
    assert ctl(pol, {"cmd": "flows"})["ok"]


def test_control_api_is_not_for_other_users(pol):
    """The ctl socket is 0600, and even a process that can reach it must be root or mwinsd's user."""
    st = os.stat(pol.sock_dir / "ctl")
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY, "-c",
                        f"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{pol.sock_dir / 'ctl'}')"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr


def test_control_api_is_not_for_protected_programs(pol):
    """A program under mwrun, even as root, is turned away twice: mwrun's gate refuses its connect to the
    socket's path (EACCES), and when --allow-unix lets the connect through, mwinsd itself closes the
    connection: it could otherwise unblock itself."""
    path = str(pol.sock_dir / 'ctl')
    code = f"""
import socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect({path!r})
except PermissionError:
    print("answer: EACCES")
    raise SystemExit
try:
    s.sendall(b'{{"cmd":"policy"}}\\n')  # mwinsd may have closed it already, at accept
    print("answer:", s.recv(65536))
except (ConnectionResetError, BrokenPipeError):
    print("answer: reset")
"""
    r = pol.run([PY, "-c", code], timeout=30)
    assert r.stdout.strip() == "answer: EACCES", (r.stdout, r.stderr)
    r = subprocess.run(pol.topo.nsexec(pol.topo.ins, [BUILD / "mwrun", "-r", pol.registry, "--allow-unix", path,
                                                      "--", PY, "-c", code]),
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() in ("answer: b''", "answer: reset"), (r.stdout, r.stderr)
    assert "refused: it runs in a loopback-only network namespace" in pol.err_path.read_text()
    assert ctl(pol, {"cmd": "policy"})["ok"], "and mwctl's own requests still work"


def test_mwinsd_help_states_the_defaults():
    """`mwinsd --help` names each default where its option is (they are the sources' macros)."""
    root = Path(__file__).resolve().parent.parent
    pen = re.search(r"#define IPFIX_PEN_DEFAULT (\d+)u", (root / "src/ins/ipfix.h").read_text()).group(1)
    spin = re.search(r"#define INS_SPIN_US_DEFAULT (\d+)", (root / "src/ins/ins.h").read_text()).group(1)
    out = subprocess.run([BUILD / "mwinsd", "--help"], capture_output=True, text=True, timeout=10).stdout
    text = " ".join(out.split())
    assert f"own elements (default {pen})" in text, out
    assert f"after work (default {spin}; 0: never)" in text, out
