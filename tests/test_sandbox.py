"""mwinsd's sandbox (src/ins/sandbox.h): the seccomp filter, the switch to an unprivileged user, no_new_privs.

    [ns app: program under mwrun -s SOCK]            tests/helpers/inject PID NR,ARGS...
          | carriers, control socket                    | makes mwinsd itself issue a call
          v                                             v
    [mwinsd in ns ins, a registry of its own] ==veth== [ns world: httpfile.py, curl]

Each test starts its own mwinsd (the module's `ins` fixture would count a killed one as a failure) and pins its
programs to it with `mwrun -s`, so that nothing falls back to another instance.  A forbidden call is made
from inside the running daemon (ptrace: the general-purpose registers only, then one single-stepped syscall
instruction of its own), which is how an exploit would make it; the daemon's exit status (we are its parent)
says whether the filter killed it.

  (a) filter on (the default): real programs are served; execve, and any call through the x32 ABI, kill
      mwinsd with SIGSYS; programs attached to it then fail closed, with errors and without hanging; a call
      mwinsd makes, with an argument it never uses, fails with an errno and mwinsd goes on serving.
  (b) --user nobody: mwinsd runs as nobody with CAP_NET_BIND_SERVICE and CAP_SYS_PTRACE only (permitted,
      effective and bounding), no_new_privs and the filter; it still serves programs of other uids, and binds
      port 80 for one that a host in world reaches.
  (c) --no-seccomp: the same injected calls do not kill it and are not refused (so the test can tell).
"""

import os
import pwd
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (BUILD, PY, _compile_helper as _helper, _popen, _read, need, nobody_bin, output, san_check,
                      sha256_file, start_mwinsd, stop)

# x86_64 system call numbers: the filter is for the native ABI only (sandbox.h).
NR_MMAP, NR_LSEEK, NR_IOCTL, NR_SOCKET, NR_EXECVE, NR_GETPID = 9, 8, 16, 41, 59, 39
X32_BIT = 0x40000000
CAPS = (1 << 10) | (1 << 19)  # CAP_NET_BIND_SERVICE, CAP_SYS_PTRACE
FILE_SIZE = 16 << 20          # larger than what sockets and the relay hold: a transfer stays in flight

# A protected program that holds a connection open across mwinsd's death, then reports what its next calls
# get: the rest of the old connection, and a new connection.  A timeout here would mean a hang.
HOLDER = r"""
import errno, socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=20)
s.sendall(("GET /%s HTTP/1.0\r\n\r\n" % path).encode())
print("connected", len(s.recv(1000)), flush=True)
sys.stdin.readline()
def attempt(what, fn):
    t = time.monotonic()
    try:
        print(what, "ok", fn(), flush=True)
    except socket.timeout:
        print(what, "timeout", flush=True)
    except OSError as e:
        print(what, "error", errno.errorcode.get(e.errno, e.errno), "%.2f" % (time.monotonic() - t), flush=True)
def drain():
    n = 0
    while True:
        d = s.recv(1 << 16)
        if not d:
            return n
        n += len(d)
attempt("old", drain)
attempt("new", lambda: socket.create_connection((host, port), timeout=20).close())
"""


class Daemon:
    """One mwinsd in ns ins, started by us (so its exit status is ours to read)."""

    def __init__(self, topo, args):
        self.topo = topo
        self.registry = Path(tempfile.mkdtemp(prefix="mwreg-"))
        os.chmod(self.registry, 0o755)
        self.id = "sbx"
        self.sock = self.registry / "ins" / self.id / "ins.sock"
        self.err_path = topo.tmpdir / f"mwinsd-{os.path.basename(self.registry)}.err"
        # RLIMIT_CORE 0: no core file when the filter kills it.
        self.proc, _ = start_mwinsd(topo, self.registry, self.id, args, self.err_path, self.err_path,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
        self.pid = self.proc.pid
        # `ip netns exec` execs: the process we started is mwinsd itself.
        assert os.path.realpath(f"/proc/{self.pid}/exe") == os.path.realpath(BUILD / "mwinsd")

    def status(self):
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            out[k] = v.split()
        return out

    def mwrun(self, argv):
        return ["ip", "netns", "exec", self.topo.ins, str(nobody_bin() / "mwrun"), "-r", str(self.registry),
                "-s", str(self.sock), "--no-dns", "--"] + [str(a) for a in argv]

    def run(self, argv, timeout=60):
        return subprocess.run(self.mwrun(argv), capture_output=True, text=True, errors="replace",
                              timeout=timeout)

    def popen(self, argv, **kw):
        """Started under mwrun; stopped (the whole tree) at the module's teardown."""
        return _popen(self.mwrun(argv), self.topo.tmpdir, self.topo.procs, **kw)

    def stderr(self):
        return _read(self.err_path)

    def stop(self):
        """SIGTERM; the exit status (None if it would not go in 5 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stop(self.proc, signal.SIGKILL)
                return None
        return self.proc.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            stop(self.proc, timeout=5)
        shutil.rmtree(self.registry, ignore_errors=True)


@pytest.fixture
def daemon(topo):
    """daemon(*args) -> a started Daemon; all stopped, and their registries removed, at the end of the test."""
    started = []

    def start(*args):
        d = Daemon(topo, [str(a) for a in args])
        started.append(d)
        return d
    yield start
    for d in started:
        d.cleanup()


@pytest.fixture(scope="module")
def www(world_http):
    world_http.add("file.bin", FILE_SIZE)
    return world_http


def inject(pid, *calls):
    """Make each call (a tuple: system call number, then arguments; "sp-N" for scratch memory on the stack) from
    inside process pid with tests/helpers/inject.c, which sets only the general-purpose registers and single-steps
    a syscall instruction of the process's own.  Returns (results, its output): results holds (return value,
    errno) for each call that returned, as libc's syscall() would give them; a call that killed the process ends
    the list."""
    argv = [str(_helper("inject"))] + [",".join(str(a) for a in c) for c in calls]
    argv.insert(1, str(pid))
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=60)
    assert r.returncode == 0, f"inject could not make the calls ({r.returncode}): {r.stderr}"
    res = []
    for line in r.stdout.splitlines():
        if line.startswith("ret "):
            v = int(line.split()[1])
            res.append((-1, -v) if -4096 < v < 0 else (v, 0))
    return res, r.stdout + r.stderr


def curl(d, www, name="file.bin"):
    """Fetch name from world through mwinsd d; check it arrived whole."""
    out = d.topo.tmpdir / f"got-{name}"
    r = d.run([need("curl"), "-sS", "--fail", "--max-time", "60", "-o", out, www.url(name)], timeout=90)
    san_check(r.stderr, "curl under mwrun")
    assert r.returncode == 0, f"curl through mwinsd failed ({r.returncode}): {r.stderr}\n{d.stderr()[-4000:]}"
    assert sha256_file(out) == www.files[name][1], "what curl got through mwinsd differs from the file"
    out.unlink()


def wait_line(proc, word, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out, err = output(proc)
        if word in out:
            return out
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    out, err = output(proc)
    pytest.fail(f"{proc.argv}: no '{word}' within {timeout} s (exit {proc.poll()}):\n{out}\n{err}")


def assert_sandboxed(d, seccomp=True):
    st = d.status()
    assert st["NoNewPrivs"] == ["1"], f"no_new_privs is not set: {st['NoNewPrivs']}"
    assert st["Seccomp"] == (["2"] if seccomp else ["0"]), f"Seccomp: {st['Seccomp']}"
    return st


# ---------------------------------------------------------------------------------------------------------------
# (a) the filter


def test_filter_serves_then_kills_and_programs_fail_closed(topo, www, daemon):
    d = daemon()
    assert_sandboxed(d)
    curl(d, www)

    holder = d.popen([PY, "-c", HOLDER, topo.world4, www.port, "file.bin"], stdin=subprocess.PIPE)
    wait_line(holder, "connected")

    res, log = inject(d.pid, (NR_EXECVE, 0, 0, 0))
    assert res == [], f"execve returned inside mwinsd instead of killing it: {res}\n{log}"
    assert d.proc.wait(timeout=10) == -signal.SIGSYS, f"mwinsd ended with {d.proc.returncode}:\n{log}"

    # Its programs fail closed: what was in flight ends in an error (never a clean, short EOF), a new
    # connection is refused at once, and nothing hangs.
    holder.stdin.write(b"go\n")
    holder.stdin.close()
    try:
        holder.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a program attached to the killed mwinsd hung:\n{output(holder)}")
    out, err = output(holder)
    san_check(err, "program under mwrun")
    lines = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.split()}
    assert lines.get("old", [""])[0] == "error", f"the connection in flight did not fail: {out}\n{err}"
    assert lines["old"][1] == "ECONNRESET", out
    assert lines.get("new", [""])[0] == "error", f"a new connection did not fail: {out}\n{err}"
    assert float(lines["new"][2]) < 5, f"the new connection took long to fail: {out}"


def test_filter_kills_x32_abi_calls(topo, www, daemon):
    d = daemon()
    assert_sandboxed(d)
    res, log = inject(d.pid, (X32_BIT | NR_GETPID,))
    assert res == [], f"an x32 call returned inside mwinsd: {res}\n{log}"
    assert d.proc.wait(timeout=10) == -signal.SIGSYS, f"mwinsd ended with {d.proc.returncode}:\n{log}"


# Calls mwinsd makes, with arguments it never uses, and what the filter answers in their place.  Without the
# filter each would succeed (as root): an AF_PACKET socket, an ioctl /dev/null knows, memory both writable and
# executable, a seek to a position.
ARG_CALLS = [
    ((NR_SOCKET, 17, 3, 0), "EAFNOSUPPORT", 97),               # socket(AF_PACKET, SOCK_RAW, 0)
    ((NR_IOCTL, 0, 2, "sp-4096"), "ENOTTY", 25),          # ioctl(stdin = /dev/null, FIGETBSZ, &int)
    ((NR_MMAP, 0, 4096, 7, 0x22, -1, 0), "EPERM", 1),         # mmap(RWX, MAP_PRIVATE | MAP_ANONYMOUS)
    ((NR_LSEEK, 0, 5, 0), "ESPIPE", 29),                      # lseek(stdin, 5, SEEK_SET)
]


def test_filter_refuses_unused_arguments_and_serves_on(topo, www, daemon):
    d = daemon()
    assert_sandboxed(d)
    res, log = inject(d.pid, *[c for c, _, _ in ARG_CALLS])
    assert len(res) == len(ARG_CALLS), f"mwinsd died of a refused argument:\n{log}\n{d.stderr()[-2000:]}"
    for (call, name, err), (ret, got) in zip(ARG_CALLS, res):
        assert (ret, got) == (-1, err), f"syscall{call}: {ret}, errno {got}; expected -1 {name}"
    assert d.proc.poll() is None
    curl(d, www)
    assert d.stop() == 0, f"mwinsd did not exit cleanly on SIGTERM:\n{d.stderr()[-4000:]}"
    san_check(d.stderr(), "mwinsd")


# ---------------------------------------------------------------------------------------------------------------
# (b) --user


def test_user_switch_keeps_only_what_it_needs(topo, www, daemon):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this system")
    d = daemon("--user", "nobody")
    st = assert_sandboxed(d)
    uid, gid = str(nobody.pw_uid), str(nobody.pw_gid)
    assert st["Uid"] == [uid] * 4, f"Uid: {st['Uid']}"
    assert st["Gid"] == [gid] * 4, f"Gid: {st['Gid']}"
    assert st["Groups"] in ([gid], []), f"supplementary groups: {st['Groups']}"
    for key in ("CapPrm", "CapEff", "CapBnd"):
        assert int(st[key][0], 16) == CAPS, f"{key} {st[key][0]}, expected {CAPS:#x}"
    for key in ("CapInh", "CapAmb"):
        assert int(st[key][0], 16) == 0, f"{key} {st[key][0]}"
    # It keeps rewriting its registry entry, and makes entries for its clients.
    for p in (d.registry / "ins" / d.id, d.registry / "ins" / d.id / "heartbeat", d.registry / "clients"):
        assert p.stat().st_uid == nobody.pw_uid, f"{p} is not nobody's"

    # A root program under mwrun serves port 80, through mwinsd (nobody + CAP_NET_BIND_SERVICE); world
    # reaches it.
    server = d.popen([PY, "-m", "http.server", "--bind", "0.0.0.0", "--directory", www.dir, "80"])
    topo.wait_port(topo.ins, 80, proc=server)
    ss = topo.run(topo.ins, ["ss", "-Hltne", "( sport = :80 )"], timeout=10)
    assert f"uid:{uid} " in ss.stdout + " ", f"port 80 is not held by mwinsd as nobody: {ss.stdout}"
    got = topo.tmpdir / "from80.bin"
    r = topo.run(topo.world, [need("curl"), "-sS", "--fail", "--max-time", "60", "-o", got,
                              f"http://{topo.ins4}:80/file.bin"], timeout=90)
    assert r.returncode == 0, f"world could not fetch from the program on port 80: {r.stderr}"
    assert sha256_file(got) == www.files["file.bin"][1]
    got.unlink()

    # mwinsd read the root program's /proc/PID/exe (CAP_SYS_PTRACE: ptrace_may_access) for its registry entry.
    exes = [_read(e / "exe").strip() for e in (d.registry / "clients").iterdir()]
    assert any(os.path.basename(x).startswith("python3") for x in exes), f"clients' exe: {exes}"

    # A program of a third uid, neither root nor nobody, is served as well.
    r = d.run(["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", need("curl"), "-sS", "--fail",
               "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", www.url("file.bin")], timeout=90)
    assert r.returncode == 0 and r.stdout == "200", f"uid 4242's curl: {r.returncode} {r.stdout} {r.stderr}"

    stop(server)
    assert d.stop() == 0, f"mwinsd did not exit cleanly on SIGTERM:\n{d.stderr()[-4000:]}"
    san_check(d.stderr(), "mwinsd")


@pytest.mark.parametrize("user", ["root", "0", "mw-no-such-user"])
def test_user_refused(topo, user):
    """A user that is root, or unknown, is refused at start: mwinsd does not serve."""
    reg = Path(tempfile.mkdtemp(prefix="mwreg-"))
    try:
        r = subprocess.run(["ip", "netns", "exec", topo.ins, str(BUILD / "mwinsd"), "-r", str(reg), "-i", "x",
                            "--user", user], capture_output=True, text=True, timeout=20)
        assert r.returncode == 1, f"mwinsd --user {user}: exit {r.returncode}, expected 1: {r.stderr}"
        assert "sandbox: --user" in r.stderr, r.stderr
        assert not (reg / "ins" / "x" / "ins.sock").exists(), "it left a rendezvous socket behind"
    finally:
        shutil.rmtree(reg, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# (c) --no-seccomp: the control


def test_no_seccomp_is_not_killed(topo, www, daemon):
    d = daemon("--no-seccomp")
    assert_sandboxed(d, seccomp=False)
    res, log = inject(d.pid, (NR_EXECVE, 0, 0, 0), (X32_BIT | NR_GETPID,), *[c for c, _, _ in ARG_CALLS])
    assert len(res) == 2 + len(ARG_CALLS), f"mwinsd died without a filter:\n{log}"
    assert res[0] == (-1, 14), f"execve(NULL) without a filter: {res[0]} (expected -1 EFAULT)"
    assert res[1][0] == -1 or res[1][0] == d.pid, f"x32 getpid without a filter: {res[1]}"
    for (call, name, _), (ret, _) in zip(ARG_CALLS, res[2:]):
        assert ret >= 0, f"syscall{call} failed without a filter too ({ret}): the test can't tell"
    curl(d, www)
    assert d.stop() == 0, f"mwinsd did not exit cleanly on SIGTERM:\n{d.stderr()[-4000:]}"
    san_check(d.stderr(), "mwinsd")
