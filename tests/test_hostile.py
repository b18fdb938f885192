"""A hostile program on the control channel (issue 6).

tests/hostile/hostile.c speaks include/mwcomms/proto.h directly to the `ins` fixture's mwinsd: malformed
frames, unknown commands, garbage arguments, ids that are not its own, descriptors where none belong, floods
of requests it never reads the answers to, and more sockets than its group may have.  Each attempt must get a
clear error or a disconnect.  Meanwhile a well-behaved program (tests/hostile/steady.py under mwrun) keeps
talking to an echo server in world and must never notice; afterwards mwinsd must be alive, serve a new
program, and be back to its fd count and (near) its memory.

Each hostile client runs in a network namespace of its own (`unshare -n`): mwinsd groups clients by
namespace, so two of them are two groups, and neither is the group of a program under mwrun.
"""

import re
import subprocess
import time

import pytest

from conftest import PY, ROOT, _popen, output, san_check
from hostile.common import (ASAN, HERE, HeartbeatWatch, alive, build, fd_listing, lines, rss_kb, settle, stable_fds,
                            wait_line, wait_until, world_server)

EBADF, ENOENT, EINVAL, EMFILE, ENOTSUP = 9, 2, 22, 24, 95
MW_MAX_PENDING_RSP = int(re.search(r"#define MW_MAX_PENDING_RSP (\d+)",
                                   (ROOT / "include" / "mwcomms" / "proto.h").read_text()).group(1))

FD_SLACK = 2          # mwinsd's fd count must come back to within this of where it was
RSS_SLACK_KB = 2048   # and its RSS to within this, after the cheap attacks
REPEAT_SLACK_KB = 1024  # and doing an attack again must not grow it by more than this


# --------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def hostile():
    return build("hostile")


@pytest.fixture(scope="module")
def faultcli():
    return build("faultcli")


@pytest.fixture(scope="module")
def echo(topo):
    _, port = world_server(topo, "echo")
    return port


@pytest.fixture(scope="module")
def sock(ins):
    """The rendezvous socket, as the registry names it."""
    return (ins.sock_dir / "sock").read_text().strip()


@pytest.fixture(scope="module")
def warm(topo, ins, echo, faultcli):
    """One program served before anything is measured, so that what mwinsd allocates once is allocated."""
    for _ in range(3):
        r = ins.run([faultcli, "probe", topo.world4, echo], timeout=30)
        assert r.returncode == 0 and "probe ok" in r.stdout, (r.stdout, r.stderr)
    return True


def cases(out):
    """{name: outcome} from the hostile client's "case NAME OUTCOME" lines."""
    res = {}
    for line in out.splitlines():
        if line.startswith("case "):
            _, name, outcome = line.split(" ", 2)
            assert name not in res, f"case {name} reported twice"
            res[name] = outcome
    return res


def run_hostile(hostile, sock, *args, timeout=60):
    """Run one hostile client in a namespace of its own; its stdout."""
    argv = ["unshare", "-n", str(hostile), str(sock)] + [str(a) for a in args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(argv)} did not finish in {timeout}s (mwinsd stopped answering?)\n"
                    f"stdout:\n{(e.stdout or b'')[-4000:]!r}")
    assert r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r.stdout


def popen_hostile(topo, hostile, sock, *args):
    return _popen(["unshare", "-n", str(hostile), str(sock)] + [str(a) for a in args], topo.tmpdir, topo.procs)


class Steady:
    """steady.py under mwrun, talking to the echo server in world until stopped."""

    def __init__(self, topo, ins, port, max_s=150):
        self.stop_file = topo.tmpdir / f"steady-stop-{time.monotonic_ns()}"
        self.proc = ins.popen([PY, HERE / "steady.py", topo.world4, port, self.stop_file, max_s])
        wait_line(self.proc, r"^ok 1 ", 20)

    def oks(self):
        out, _ = output(self.proc)
        return [float(l.split()[2]) for l in lines(out, "ok ")]

    def wait_more(self, n, timeout=15):
        """Wait for n more successful rounds than there are now."""
        have = len(self.oks())
        return wait_until(lambda: len(self.oks()) >= have + n, timeout)

    def stop(self):
        self.stop_file.touch()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass

    def finish(self):
        """Stop it; fail if any round failed.  Returns the times of the good rounds."""
        self.stop()
        out, err = output(self.proc)
        san_check(err, "steady.py under mwrun")
        assert self.proc.returncode == 0, \
            f"the well-behaved program exited {self.proc.returncode}\n{out[-3000:]}\n{err[-3000:]}"
        fails = lines(out, "fail ")
        assert not fails, \
            "the well-behaved program failed while mwinsd was under attack:\n" + "\n".join(fails[:20])
        assert lines(out, "summary ok="), out[-2000:]
        return self.oks()


@pytest.fixture
def steady(topo, ins, echo):
    """A Steady started for the test, and stopped at its end whatever happens."""
    made = []

    def start():
        made.append(Steady(topo, ins, echo))
        return made[-1]
    yield start
    for st in made:
        st.stop()


class Watch:
    """mwinsd's fd count and RSS before an attack (taken before the well-behaved program starts), and the
    checks after it."""

    def __init__(self, ins):
        self.ins = ins
        self.pid = ins.proc.pid
        assert open(f"/proc/{self.pid}/comm").read().strip() == "mwinsd"
        # let anything freed by an earlier test go first
        self.fd0 = stable_fds(self.pid)
        self.rss0 = rss_kb(self.pid)

    def check(self, topo, faultcli, echo, rss_slack_kb=RSS_SLACK_KB, what="the attack", fds=True):
        """mwinsd is alive, serves a new program correctly, and its RSS (and, once nothing else of ours is
        attached, with fds=True, its fd count) is back near the baseline.  Returns the RSS."""
        assert self.ins.proc.poll() is None and alive(self.pid), f"mwinsd died during {what}"
        r = self.ins.run([faultcli, "probe", topo.world4, echo], timeout=30)
        assert r.returncode == 0 and "probe ok" in r.stdout, \
            f"a new program is not served after {what}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
        if fds:
            n = settle(self.pid, self.fd0, FD_SLACK, 5)
            assert n <= self.fd0 + FD_SLACK, \
                f"mwinsd holds {n} fds after {what}, {self.fd0} before:\n{fd_listing(self.pid)[-3000:]}"
        rss = rss_kb(self.pid)
        assert ASAN or rss <= self.rss0 + rss_slack_kb, \
            f"mwinsd's RSS grew from {self.rss0} kB to {rss} kB with {what} (slack {rss_slack_kb} kB)"
        return rss


def attack_with_steady(topo, ins, echo, faultcli, fn, repeat=3, rss_slack_kb=RSS_SLACK_KB, what="the attack"):
    """Run fn() (the attack, returning its output) `repeat` times while steady.py runs; after each, mwinsd
    must be alive and serving, and repeating the attack must not grow its memory; at the end its fd count
    must be back to the baseline.  Returns the first output."""
    watch = Watch(ins)
    st = Steady(topo, ins, echo)
    outs, rss = [], []
    try:
        for _ in range(repeat):
            outs.append(fn())
            assert st.wait_more(2), "the well-behaved program stopped making progress during the attack"
            rss.append(watch.check(topo, faultcli, echo, rss_slack_kb, what, fds=False))
    finally:
        st.stop()
    st.finish()
    watch.check(topo, faultcli, echo, rss_slack_kb, what)
    # The first round may warm the allocator up (a new arena, a huge page: 2 MiB at once); a leak grows on
    # every round, so the later rounds are compared (the total stays within watch.check's slack).
    base = rss[1] if len(rss) > 2 else rss[0]
    assert ASAN or rss[-1] <= base + REPEAT_SLACK_KB, \
        f"mwinsd's RSS grows with each round of {what}: {rss} kB"
    return outs[0]


# --------------------------------------------------------------------------
# the attacks


def test_malformed_frames_disconnect(topo, ins, warm, echo, faultcli, hostile, sock):
    """Truncated, oversized, odd-length, empty and wrong-version messages, requests before HELLO and HELLO
    twice: each one a disconnect of that client only."""
    out = attack_with_steady(topo, ins, echo, faultcli, lambda: run_hostile(hostile, sock, "malformed"),
                             what="malformed frames")
    c = cases(out)
    assert len(c) >= 40, out
    bad = {k: v for k, v in c.items() if v != "disconnected"}
    assert not bad, f"protocol violations that did not disconnect the client: {bad}"
    assert "sanity ok" in out, out
    assert "idle-socket answered" in out, out


def test_unknown_commands_get_enotsup(topo, ins, warm, echo, faultcli, hostile, sock):
    """Unknown and reserved commands (release, accept, poll) get -ENOTSUP, with or without a valid socket id,
    and the connection stays up."""
    out = attack_with_steady(topo, ins, echo, faultcli, lambda: run_hostile(hostile, sock, "unknown"),
                             what="unknown commands")
    c = cases(out)
    unknown = {k: v for k, v in c.items() if k.startswith("unknown-")}
    assert len(unknown) >= 28, out
    bad = {k: v for k, v in unknown.items() if v != f"rsp ret=-{ENOTSUP}"}
    assert not bad, f"unknown commands not answered -ENOTSUP: {bad}"
    assert c["still-connected"] == f"rsp ret=-{EBADF}", out
    assert c["socket-after-unknown"] == "rsp ret=0", out


def test_garbage_arguments_get_errors(topo, ins, warm, echo, faultcli, hostile, sock):
    """Well-formed requests with nonsense in their arguments: a negative errno each, no disconnect."""
    out = attack_with_steady(topo, ins, echo, faultcli, lambda: run_hostile(hostile, sock, "badargs"),
                             what="garbage arguments")
    c = cases(out)
    assert len(c) >= 18, out
    for name, v in c.items():
        m = re.fullmatch(r"rsp ret=(-?\d+)", v)
        assert m, f"{name}: {v} (wanted an error response, and to stay connected)\n{out}"
        assert -4095 <= int(m.group(1)) < 0, f"{name}: {v} is not an error\n{out}"
    assert c["still-connected"] == f"rsp ret=-{EBADF}", out


def test_ids_never_created_get_ebadf(topo, ins, warm, echo, faultcli, hostile, sock):
    """Ids never created (0, out of range, other generations) and a stale one (a socket closed) name nothing:
    -EBADF for every command that takes an id."""
    out = attack_with_steady(topo, ins, echo, faultcli, lambda: run_hostile(hostile, sock, "badids"),
                             what="made-up socket ids")
    c = cases(out)
    named = {k: v for k, v in c.items() if k.startswith(("never-", "stale-"))}
    assert len(named) >= 11 * 8 + 3 * 8, out
    bad = {k: v for k, v in named.items() if v != f"rsp ret=-{EBADF}"}
    assert not bad, f"ids that are not the caller's were not refused with -EBADF: {bad}"
    assert re.search(r"^stale id \S+ freed: yes$", out, re.M), out
    assert c["own-id"] == "rsp ret=0", out


def test_foreign_ids_get_ebadf_and_victim_untouched(topo, ins, warm, echo, faultcli, hostile, sock, steady):
    """A victim in one namespace makes a connected and an unbound socket; an attacker in another names their
    ids (and the neighbouring generations) with every command: -EBADF each time (and close hints for them
    change nothing), and the victim finds both
    sockets as it left them (bytes still flow, no linger set, not listening, not bound, page records
    unchanged).  A control client in the victim's own namespace may name the same id."""
    watch = Watch(ins)
    st = steady()
    trigger = topo.tmpdir / "victim-go"
    victim = popen_hostile(topo, hostile, sock, "victim", topo.world4, echo, trigger)
    m = wait_line(victim, r"^victim ids (\S+) (\S+)$", 15)
    ids = [m.group(1), m.group(2)]

    out = run_hostile(hostile, sock, "attack", topo.world4, echo, *ids)
    c = cases(out)
    foreign = {k: v for k, v in c.items() if k.startswith("foreign-") and not k.endswith("-close-hint")}
    assert len(foreign) == 2 * 3 * 8, out
    hints = {k: v for k, v in c.items() if k.endswith("-close-hint")}
    assert len(hints) == 2 * 3 and set(hints.values()) == {"sent"}, out
    bad = {k: v for k, v in foreign.items() if v != f"rsp ret=-{EBADF}"}
    assert not bad, f"another group's socket ids were not refused with -EBADF: {bad}"
    assert c["still-connected"] == f"rsp ret=-{EBADF}", out

    # control: the same id from the victim's own namespace (its group) names its socket
    r = subprocess.run(["nsenter", f"--net=/proc/{victim.pid}/ns/net", str(hostile), sock, "peek", ids[0]],
                       capture_output=True, text=True, timeout=30)
    assert re.search(r"^case peek-\S+ rsp ret=0 type=stream$", r.stdout, re.M), \
        f"control failed: a client in the victim's group could not name {ids[0]}: {r.stdout} {r.stderr}"

    trigger.touch()
    wait_line(victim, r"^victim (ok|damaged.*)$", 20)
    vout, verr = output(victim)
    assert "victim ok" in vout, f"the victim's sockets were touched by another group:\n{vout}\n{verr}"
    victim.wait(timeout=10)
    assert victim.returncode == 0, vout
    assert st.wait_more(2)
    st.finish()
    watch.check(topo, faultcli, echo, what="naming another group's sockets")


def test_descriptors_where_they_do_not_belong(topo, ins, warm, echo, faultcli, hostile, sock):
    """An fd with a command that takes none, none with one that needs one, or several at once: disconnect
    (and none of them leaks in mwinsd).  The wrong kind of fd with IDENTIFY: -ENOENT; with a nonblocking
    CONNECT (not that socket's own carrier end, or an absurd filler count): -EINVAL."""
    out = attack_with_steady(topo, ins, echo, faultcli, lambda: run_hostile(hostile, sock, "fds"),
                             what="stray descriptors")
    c = cases(out)
    disc = [k for k in c if k.startswith(("fd-with-", "fds-", "identify-with", "identify-without",
                                          "nonblocking-connect-without"))]
    assert len(disc) == 12, out
    bad = {k: c[k] for k in disc if c[k] != "disconnected"}
    assert not bad, f"descriptors where none belong did not disconnect: {bad}"
    ident = {k: v for k, v in c.items()
             if k.startswith("identify-") and k not in disc and k != "identify-own-carrier"}
    assert len(ident) == 8, out
    bad = {k: v for k, v in ident.items() if v != f"rsp ret=-{ENOENT}"}
    assert not bad, f"IDENTIFY with what is not a carrier did not get -ENOENT: {bad}"
    nbc = {k: v for k, v in c.items() if k.startswith("nbconnect-")}
    assert len(nbc) == 6, out
    bad = {k: v for k, v in nbc.items() if v != f"rsp ret=-{EINVAL}"}
    assert not bad, f"nonblocking CONNECT with the wrong descriptor did not get -EINVAL: {bad}"
    assert c["identify-own-carrier"] == "rsp ret=0 same-id", out
    assert c["still-connected"] == f"rsp ret=-{EBADF}", out


@pytest.mark.parametrize("kind", ["unknown", "getsockopt", "socket"])
def test_flood_without_reading(topo, ins, warm, echo, faultcli, hostile, sock, kind):
    """Requests sent as fast as possible and no answer ever read: mwinsd queues a bounded number of
    answers (MW_MAX_PENDING_RSP), then drops the client, and goes on serving the others.  With SOCKET, each
    queued answer holds a new socket and its carrier: all of them must be freed with the client."""
    count = 100000

    def flood():
        t = time.monotonic()
        out = run_hostile(hostile, sock, "flood", kind, count, 20, timeout=60)
        m = re.search(r"^flood sent=(\d+) outcome=(\S+) elapsed_ms=(\d+)$", out, re.M)
        assert m, out
        sent, outcome = int(m.group(1)), m.group(2)
        assert outcome == "disconnected", f"a client that never reads was not disconnected: {out}"
        # bounded: the queue, plus what the sockets' buffers held
        assert sent < MW_MAX_PENDING_RSP + 8192, f"mwinsd took {sent} unread requests before giving up"
        d = re.search(r"^flood drained=(\d+) fds=(\d+) end=eof$", out, re.M)
        assert d, f"no EOF after the flood: {out}"
        assert int(d.group(1)) <= MW_MAX_PENDING_RSP, out
        assert time.monotonic() - t < 30
        return out

    # The SOCKET flood makes thousands of sockets: what malloc keeps of them may stay in mwinsd's RSS
    # once; it must not grow from one round to the next (checked by attack_with_steady).
    attack_with_steady(topo, ins, echo, faultcli, flood, rss_slack_kb=16384 if kind == "socket" else RSS_SLACK_KB,
                       what=f"a {kind} flood")


def test_socket_limit(topo, ins, warm, echo, faultcli, hostile, sock, steady):
    """A group that opens sockets until it can't: SOCKET ends in -EMFILE within bounded time, never beyond
    the group's slots, the client stays connected, closing sockets makes room again.  While it sits at its
    limit, other programs (the running one, and a new one) must still be served: one group must not be able
    to use up what mwinsd needs for everyone else."""
    watch = Watch(ins)
    st = steady()
    trigger = topo.tmpdir / "limit-release"
    t0 = time.monotonic()
    beat = HeartbeatWatch(ins.registry, ins.id)
    hog = popen_hostile(topo, hostile, sock, "limit", 60, trigger)
    try:
        wait_line(hog, r"^limit holding$", 90)
        holding_since = time.time()
        limit_line = re.search(r"^limit opened=(\d+) nslots=(\d+) err=(-?\d+) elapsed_ms=(\d+)$",
                               output(hog)[0], re.M)
        # others, while the hog holds everything it could get
        fresh = ins.run([faultcli, "probe", topo.world4, echo], timeout=30)
        progressed = st.wait_more(3, timeout=10)
    finally:
        trigger.touch()
        max_age = beat.stop()
    hog.wait(timeout=60)
    out, err = output(hog)
    elapsed = time.monotonic() - t0
    assert hog.returncode == 0, f"{out}\n{err}"
    assert limit_line, out
    opened, nslots, errno_, ms = (int(x) for x in limit_line.groups())
    c = cases(out)

    # first: were the others served while the hog sat at its limit?
    problems = []
    if not (fresh.returncode == 0 and "probe ok" in fresh.stdout):
        problems.append(f"a new program was not served while one group sat at its limit of {opened} sockets "
                        f"(rc={fresh.returncode}): {fresh.stdout.strip()} {fresh.stderr.strip()[-500:]}")
    if not progressed:
        problems.append("the running program made no progress while one group sat at its limit")
    if max_age >= 2.5:
        problems.append(f"mwinsd's heartbeat stalled for {max_age:.1f} s meanwhile")
    sout, _ = output(st.proc)
    fails = [l for l in lines(sout, "fail ") if float(l.split()[2]) >= holding_since - 1]
    if fails:
        problems.append("the running program failed while one group sat at its limit:\n" + "\n".join(fails[:5]))
    try:
        st.finish()
    except AssertionError as e:
        if not fails:
            problems.append(str(e))
    limits = open(f"/proc/{ins.proc.pid}/limits").read()
    nofile = [l for l in limits.splitlines() if l.startswith("Max open files")]
    print(f"hog: opened={opened} nslots={nslots} err={errno_} in {ms} ms; mwinsd: {nofile}\n{out}")
    assert not problems, "\n".join(problems) + f"\n(hog: opened={opened} nslots={nslots}; mwinsd: {nofile})\n{out}"

    # then: the hog itself got clear answers, in bounded time
    assert errno_ == -EMFILE, f"SOCKET at the limit did not fail with -EMFILE: {out}"
    assert 0 < opened <= nslots - 1, f"opened {opened} sockets with {nslots} slots (slot 0 is never used)"
    assert ms < 30000 and elapsed < 90, f"reaching the limit took {ms} ms"
    assert c["one-more"] == f"rsp ret=-{EMFILE}", out
    assert c["still-connected"] == f"rsp ret=-{EBADF}", out
    assert c["socket-after-close"] == "rsp ret=0", out
    assert re.search(rf"^limit refilled opened=\d+ err=-{EMFILE}$", out, re.M), out
    assert c["still-connected-after-hold"] == f"rsp ret=-{EBADF}", out
    # 16383 sockets' worth of structures may stay with malloc; a second run must not add to it
    watch.check(topo, faultcli, echo, rss_slack_kb=65536, what="the socket-limit attack")


def test_many_control_connections(topo, ins, warm, echo, faultcli, hostile, sock, steady):
    """One client opens control connections (each saying HELLO) for as long as mwinsd takes them, and holds
    them.  Meanwhile the running program and a new one must still be served: connections, like sockets,
    must be limited before they use up what mwinsd needs for everyone else.  Afterwards every one of them
    is released."""
    watch = Watch(ins)
    st = steady()
    trigger = topo.tmpdir / "conns-release"
    beat = HeartbeatWatch(ins.registry, ins.id)
    hog = popen_hostile(topo, hostile, sock, "conns", 100000, 30, trigger)
    try:
        wait_line(hog, r"^conns holding$", 90)
        holding_since = time.time()
        fresh = ins.run([faultcli, "probe", topo.world4, echo], timeout=30)
        progressed = st.wait_more(3, timeout=10)
    finally:
        trigger.touch()
        max_age = beat.stop()
    hog.wait(timeout=60)
    out, err = output(hog)
    print(out)
    assert hog.returncode == 0, f"{out}\n{err}"
    m = re.search(r"^conns opened=(\d+) answered=(\d+) stop=(\S+) elapsed_ms=(\d+)$", out, re.M)
    assert m, out
    problems = []
    if not (fresh.returncode == 0 and "probe ok" in fresh.stdout):
        problems.append(f"a new program was not served while one client held {m.group(1)} control connections "
                        f"(rc={fresh.returncode}): {fresh.stdout.strip()} {fresh.stderr.strip()[-300:]}")
    if not progressed:
        problems.append("the running program made no progress while one client held its control connections")
    if max_age >= 2.5:
        problems.append(f"mwinsd's heartbeat stalled for {max_age:.1f} s meanwhile: mwctl and mwrun would have "
                        f"taken it for dead")
    sout, _ = output(st.proc)
    fails = [l for l in lines(sout, "fail ") if float(l.split()[2]) >= holding_since - 1]
    if fails:
        problems.append("the running program failed meanwhile:\n" + "\n".join(fails[:5]))
    try:
        st.finish()
    except AssertionError as e:
        if not fails:
            problems.append(str(e))
    if m.group(3) not in ("max", "own-fd-limit", "hello-refused", "disconnected"):
        problems.append(f"the client's connections ended with '{m.group(3)}' after {m.group(1)}: a HELLO went "
                        f"unanswered for 2 s (mwinsd stalled) or mwinsd stopped accepting; wanted a clear "
                        f"refusal (an error or a disconnect)")
    assert not problems, "\n".join(problems) + f"\n(hog: {m.group(0)})"
    watch.check(topo, faultcli, echo, rss_slack_kb=16384, what="holding many control connections")
