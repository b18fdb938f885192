"""(1) The conformance program, with the kernel as the oracle.

tests/conform/ builds `conform`, which runs one case per socket semantic
(tests/conform/case-list.h) and prints one canonical outcome line per case:
return values, errno names, poll flags, byte counts and checksums, never
timings, addresses or port numbers.

    [ns ins]  conform run            kernel sockets: the oracle
    [ns ins]  mwrun -- conform run   the same cases through the channel
                      \\                  /
    [ns world] conform peer --port P: TCP echo, source, reset, count, hold, dial,
                                      watch, sum; UDP echo, other-port echo

The module runs the whole program once each way, then checks every case on its
own (test_case[NAME]): the kernel run must pass its own self-checks, and the
line under mwrun must equal the kernel's.  On a mismatch the report shows both
lines and the key=value tokens that differ.
"""

import difflib
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, san_check

CONFORM_DIR = ROOT / "tests" / "conform"
CASE_LIST = CONFORM_DIR / "case-list.h"
# The peer's TCP services sit at P+0 .. P+7, its UDP services at P+0 .. P+2, and P+9 stays closed to both
# (enum peer_service and enum peer_udp_service in conform.h).  It binds the UDP ports before it listens on TCP.
PEER_PORTS = 10
PEER_LAST_SERVICE = 7


def _case_list():
    """[(name, timeout_s)] in run order, read from the registry itself so that a new case is tested at once."""
    return [(m.group(1), int(m.group(2)))
            for m in re.finditer(r"^\s*X\((\w+),\s*(\d+)\)", CASE_LIST.read_text(), re.M)]


# Differences from the kernel that the channel cannot remove, each with the reason (also in the README's
# "Not supported yet").  They are exact token substitutions: the line under mwrun must equal the kernel's with
# just these tokens replaced, so a known difference that grows, changes or disappears still fails.
KNOWN = {
    # A carrier shows POLLERR only if mwinsd closes it with bytes unread, and after a reset on an established
    # connection there are usually none.  recv and SO_ERROR still give ECONNRESET.
    "reset_poll_4": [("revents=IN|OUT|ERR|HUP|RDHUP", "revents=IN|OUT|HUP|RDHUP")],
    # A UDP socket's ICMP error reaches the program as a marker message on the carrier (so that a blocked
    # receive wakes), which polls as POLLIN where the kernel shows POLLERR.  recv, send and SO_ERROR give the
    # error exactly once, as on the kernel, and the marker is gone once the error has been reported.
    **{f"udp_refused_{v}": [(f"revents{i}=OUT|ERR", f"revents{i}=IN|OUT") for i in (1, 2, 3)] for v in (4, 6)},
    "udp_recverr_unconnected_4": [("revents1=ERR", "revents1=IN")],
}


def expected_under_mwrun(name, kernel_line):
    for old, new in KNOWN.get(name, []):
        if old not in _tokens(kernel_line):
            return kernel_line  # the kernel changed: compare plainly, and let a stale entry show
        kernel_line = " ".join(new if t == old else t for t in _tokens(kernel_line))
    return kernel_line


CASES = _case_list()
CASE_NAMES = {n for n, _ in CASES}
# Every case hanging until its alarm is the worst a run can take; the margin is for process start-up.
RUN_TIMEOUT = sum(t for _, t in CASES) + 30


class Outcome:
    """One `conform run`: its exit status and its lines, by case name."""

    def __init__(self, what, rc, stdout, stderr):
        self.what, self.rc, self.stdout, self.stderr = what, rc, stdout or "", stderr or ""
        self.lines = {}
        self.summary = None
        for line in self.stdout.splitlines():
            name, sep, rest = line.partition(":")
            if sep and name in CASE_NAMES:
                self.lines[name] = rest.strip()
            elif re.fullmatch(r"\d+ passed, \d+ failed", line.strip()):
                self.summary = line.strip()

    def describe(self):
        return (f"{self.what}: exit status {self.rc}, summary {self.summary!r}\n"
                f"stderr (tail):\n{self.stderr[-3000:]}")


def _run(what, runner, argv):
    try:
        r = runner(argv, timeout=RUN_TIMEOUT)
        return Outcome(what, r.returncode, r.stdout, r.stderr)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        return Outcome(f"{what} (killed after {RUN_TIMEOUT} s)", None, out, err)


@pytest.fixture(scope="module")
def conform_bin():
    out = BUILD / "tests"
    r = subprocess.run(["make", "-s", "-C", str(CONFORM_DIR), f"OUT={out}"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"building tests/conform failed:\n{r.stdout}\n{r.stderr}")
    return out / "conform"


@pytest.fixture(scope="module")
def outcomes(topo, ins, conform_bin):
    """(kernel, mwrun): the whole program run once each way against one peer."""
    ports = [topo.port() for _ in range(PEER_PORTS)]
    base = ports[0]
    assert ports == list(range(base, base + PEER_PORTS)), "topo.port() did not hand out consecutive ports"
    peer = topo.popen(topo.world, [conform_bin, "peer", "--port", base])
    # The peer opens every listener before it serves: the last one listening means all are.
    topo.wait_port(topo.world, base + PEER_LAST_SERVICE, proc=peer)
    argv = [conform_bin, "run", "--peer4", topo.world4, "--peer6", topo.world6,
            "--port", base, "--blackhole", topo.blackhole4]
    kernel = _run("kernel (ns ins, no mwrun)", lambda a, **kw: topo.run(topo.ins, a, **kw), argv)
    shim = _run("under mwrun", ins.run, argv)
    topo.stop(peer)
    return kernel, shim


def _tokens(line):
    """key=value tokens; a FAIL(...) note, which has spaces inside, stays one token."""
    return re.findall(r"\S*\([^)]*\)\S*|\S+", line)


def _token_diff(want, got):
    """The tokens that differ, as a short '-want +got' list."""
    a, b = _tokens(want), _tokens(got)
    out = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            out += [f"    - {t}" for t in a[a0:a1]] + [f"    + {t}" for t in b[b0:b1]]
    return "\n".join(out)


def test_case_registry_is_readable():
    names = [n for n, _ in CASES]
    assert len(names) >= 40, f"only {len(names)} cases parsed from {CASE_LIST}"
    assert len(set(names)) == len(names), "duplicate case names"


@pytest.mark.parametrize("name", [n for n, _ in CASES])
def test_case(outcomes, name):
    kernel, shim = outcomes
    want = kernel.lines.get(name)
    if want is None:
        pytest.fail(f"the kernel run printed no line for {name}\n{kernel.describe()}")
    if "FAIL" in want:
        pytest.fail(f"{name} fails on kernel sockets (the oracle itself, so the test or the "
                    f"topology is wrong):\n  kernel: {want}")
    want = expected_under_mwrun(name, want)
    got = shim.lines.get(name)
    if got is None:
        pytest.fail(f"no line for {name} under mwrun (it died or stopped before it)\n{shim.describe()}")
    if got != want:
        pytest.fail(f"{name} differs under mwrun:\n"
                    f"  kernel: {want}\n  mwrun:  {got}\n"
                    f"  tokens (- kernel, + mwrun):\n{_token_diff(want, got)}")


def test_whole_run(outcomes):
    """Both runs exit 0 with identical output, and nothing under mwrun printed a sanitizer report."""
    kernel, shim = outcomes
    san_check(shim.stderr, "conform under mwrun")
    assert kernel.rc == 0, kernel.describe()
    expected = []
    for line in kernel.stdout.splitlines():
        name, sep, rest = line.partition(":")
        expected.append(f"{name}: {expected_under_mwrun(name, rest.strip())}" if sep and name in CASE_NAMES
                        else line)
    if shim.stdout.splitlines() != expected:
        diff = "\n".join(difflib.unified_diff(expected, shim.stdout.splitlines(),
                                              "kernel", "mwrun", lineterm="", n=0))
        pytest.fail(f"outputs differ:\n{diff}\n{shim.describe()}")
    assert shim.rc == 0, shim.describe()
