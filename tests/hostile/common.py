"""What test_hostile.py and test_faults.py share: building the C helpers in tests/hostile/, looking at a
process from /proc, waiting for things with a bound, and the world-side servers."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, output

HERE = Path(__file__).resolve().parent


def build(name):
    """Compile tests/hostile/<name>.c into BUILD/tests/<name> (again when it or the protocol headers
    changed); returns the path."""
    src = HERE / f"{name}.c"
    out = BUILD / "tests" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    deps = [src] + sorted((ROOT / "include" / "mwcomms").glob("*.h"))
    if out.exists() and all(out.stat().st_mtime >= d.stat().st_mtime for d in deps):
        return out
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler to build the test helpers")
    tmp = f"{out}.tmp{os.getpid()}"
    r = subprocess.run([cc, "-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
                        "-I", str(ROOT / "include"), "-pthread", "-o", tmp, str(src)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"compiling {src} failed:\n{r.stderr}")
    os.replace(tmp, out)
    return out


def _asan_build():
    try:
        r = subprocess.run(["ldd", str(BUILD / "mwinsd")], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libasan" in r.stdout


# An ASan build keeps freed memory in quarantine (and shadow memory besides): its RSS says nothing about
# leaks, so the memory checks are skipped against it (the fd checks and LeakSanitizer remain).
ASAN = _asan_build()


# --------------------------------------------------------------------------
# a process seen from /proc


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def fd_listing(pid):
    out = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            out.append(f"{fd} -> {os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            pass
    return "\n".join(out)


def wait_until(fn, timeout, interval=0.05):
    """Call fn until it returns something true or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def settle(pid, fd_base, fd_slack, timeout):
    """Wait until pid's fd count is back within fd_slack of fd_base; returns the count."""
    return wait_until(lambda: fd_count(pid) <= fd_base + fd_slack and fd_count(pid), timeout) or fd_count(pid)


def net_stats(registry, ins_id):
    """REG/ins/ID/network_stats as a dict of ints ({} if unreadable)."""
    try:
        text = (Path(registry) / "ins" / ins_id / "network_stats").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and f[1].isdigit():
            out[f[0]] = int(f[1])
    return out


def fresh_stats(registry, ins_id, timeout=3):
    """network_stats as written after the next heartbeat (the file is rewritten once a second, so what is
    there now may predate what the caller just did)."""
    hb = Path(registry) / "ins" / ins_id / "heartbeat"

    def beat():
        try:
            return hb.read_text().strip()
        except OSError:
            return None
    b0 = beat()
    wait_until(lambda: beat() != b0, timeout)
    time.sleep(0.05)  # the stats are written right after the heartbeat
    return net_stats(registry, ins_id)


def stable_fds(pid, timeout=5):
    """pid's fd count once it has not changed for 0.3 s (at most timeout s)."""
    def stable():
        a = fd_count(pid)
        time.sleep(0.3)
        return a if fd_count(pid) == a else None
    return wait_until(stable, timeout) or fd_count(pid)


class HeartbeatWatch:
    """Samples the age of REG/ins/ID/heartbeat (now - its mtime) in the background; .stop() returns the
    largest age seen, in seconds.  mwctl and mwrun take an instance whose heartbeat is older than ~2.5 s
    for dead."""

    def __init__(self, registry, ins_id, interval=0.1):
        import threading
        self.path = Path(registry) / "ins" / ins_id / "heartbeat"
        self.max_age = 0.0
        self._stop = threading.Event()
        self._interval = interval
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.max_age = max(self.max_age, time.time() - self.path.stat().st_mtime)
            except OSError:
                pass
            self._stop.wait(self._interval)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        return self.max_age


def lines(text, prefix):
    return [l for l in text.splitlines() if l.startswith(prefix)]


def wait_line(proc, pattern, timeout):
    """Wait until proc's stdout has a line matching pattern (a regex); returns the match, or fails with
    what the process said."""
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        out, err = output(proc)
        m = rx.search(out)
        if m:
            return m
        if proc.poll() is not None or time.monotonic() >= deadline:
            pytest.fail(f"{proc.argv}: no line /{pattern}/ within {timeout}s "
                        f"(exit status {proc.returncode})\nstdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}")
        time.sleep(0.05)


def world_server(topo, mode, port=None):
    """Start echosrv in ns world on a fresh port (see echosrv.c for the modes); returns (proc, port)."""
    port = port or topo.port()
    proc = topo.popen(topo.world, [build("echosrv"), port, mode])
    wait_line(proc, r"^listening ", 10)
    return proc, port
