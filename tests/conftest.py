"""pytest fixtures shared by every mwcomms test.

Topology built by the fixtures (one set per test module):

    [ns app: program under mwrun, loopback only]
          |
          | shim: control socket + carriers (AF_UNIX)
          v
    [mwinsd in ns ins] ==veth== [ns world: real servers/clients, IPv4+IPv6]
     veth0 10.77.0.1/24             veth1 10.77.0.2/24
           fd77::1/64                     fd77::2/64
     route 10.77.9.0/24 via 10.77.0.2 (world does not forward: SYNs to
     10.77.9.x vanish, so connect timeouts can be tested)

`ns app` is created by mwrun itself (a fresh netns with only `lo`); the
fixtures create `ins` and `world`.  mwrun runs inside `ins`, so the mwinsd
started by the `ins` fixture and any embedded one share that namespace.

Fixture API (other test files depend on it):

  ROOT   repo root;  BUILD = ROOT/'build' unless $MWCOMMS_BUILD overrides it
         (relative values are taken relative to ROOT).

  topo   (module)  .ins .world            namespace names
                   .ins4 .ins6 .world4 .world6 .blackhole4
                   .run(ns, argv, **kw)   subprocess.run under `ip netns exec`
                                          (capture_output, text, timeout=120)
                   .popen(ns, argv, **kw) Popen under `ip netns exec`; stdout and
                                          stderr go to files unless given
                                          (proc.out_path / proc.err_path,
                                          read back with output(proc)); killed
                                          (whole process tree) at teardown
                   .wait_port(ns, port, proto='tcp', timeout=10, proc=None)
                   .stop(proc, sig=SIGTERM, timeout=10) -> returncode
                   .port()                a fresh port number for this module
                   .tmpdir                a per-module scratch dir (0755)

  ins    (module)  .registry .proc .id .sock_dir
                   .mwrun(argv) -> ['ip','netns','exec',ins,BUILD/mwrun,'-r',REG,'--',*argv]
                   .run(argv, **kw)   / .popen(argv, **kw)   as above, under mwrun
                   At teardown mwinsd gets SIGTERM, must exit 0 within 5 s, and
                   neither it nor any program run under mwrun may have printed a
                   sanitizer report.

  need(tool)       skip when the tool is missing, but FAIL when $CI=true.
  helper_bin(name) compile tests/helpers/<name>.c into BUILD/tests/<name>.
  san_check(text, what)  fail if text holds an ASan/UBSan/LSan report.
  output(proc)     (stdout, stderr) text of a popen'd process.
"""

import atexit
import itertools
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_b = os.environ.get("MWCOMMS_BUILD")
BUILD = (ROOT / _b if not os.path.isabs(_b) else Path(_b)) if _b else ROOT / "build"
HELPERS = ROOT / "tests" / "helpers"
PY = "/usr/bin/python3"

IN_CI = os.environ.get("CI", "").lower() == "true"

SAN_PATTERNS = ("AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                "ThreadSanitizer", "MemorySanitizer")


def stop_all(procs):
    """Stop procs (last started first) and return the sanitizer reports any of them printed, as problems."""
    problems = []
    for p in reversed(procs):
        try:
            stop(p, timeout=5)
        except Exception:
            pass
        err = _read(p.err_path) if getattr(p, "err_path", None) else ""
        if any(pat in err for pat in SAN_PATTERNS):
            problems.append(f"{p.argv} printed a sanitizer report:\n{err[-6000:]}")
    return problems


_counter = itertools.count()


# --------------------------------------------------------------------------
# small helpers


def need(tool):
    """Return the path of `tool`; skip the test if it is missing (FAIL in CI)."""
    path = shutil.which(tool)
    if path is None:
        msg = f"required tool {tool!r} is not installed"
        if IN_CI:
            pytest.fail(msg + " (CI=true: missing tools are failures)")
        pytest.skip(msg)
    return path


def san_check(text, what="process"):
    if not text:
        return
    for pat in SAN_PATTERNS:
        if pat in text:
            pytest.fail(f"{what} printed a sanitizer report ({pat!r}):\n{text[-8000:]}")


def _read(path, limit=None):
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    if limit is not None and len(data) > limit:
        data = data[-limit:]
    return data.decode(errors="replace")


def output(proc):
    """(stdout, stderr) of a process started by topo.popen / ins.popen."""
    out = _read(proc.out_path) if getattr(proc, "out_path", None) else ""
    err = _read(proc.err_path) if getattr(proc, "err_path", None) else ""
    return out, err


def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        # the comm field may contain spaces and parentheses: split after the last ')'
        rest = stat[stat.rfind(")") + 2:].split()
        ppid = int(rest[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _descendants(pid):
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            if c not in out:
                out.append(c)
                todo.append(c)
    return out


def host_pid(root, vpid):
    """The host's pid of the process that calls itself vpid in its own PID namespace (under mwrun, getpid()
    inside differs from the pid mwinsd and mwctl know), found among root's descendants; vpid itself when none
    matches (a program run without a PID namespace of its own)."""
    for p in _descendants(root):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    if len(ids) > 1 and int(ids[-1]) == int(vpid):
                        return p
        except OSError:
            continue
    return vpid


def _signal_tree(pid, sig):
    """Signal pid, its process group (if it leads one) and all its descendants."""
    victims = [pid] + _descendants(pid)
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
    except OSError:
        pass
    for p in victims:
        try:
            os.kill(p, sig)
        except OSError:
            pass


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Stop a popen'd process and everything it started; returns its exit code."""
    if proc.poll() is None:
        _signal_tree(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    # whatever is left over (children that ignored sig, or the process itself)
    leftovers = _descendants(proc.pid)
    if proc.poll() is None or leftovers:
        _signal_tree(proc.pid, signal.SIGKILL)
        for p in leftovers:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    return proc.returncode


def _run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 120)
    if "text" not in kw and "universal_newlines" not in kw and "encoding" not in kw:
        kw["text"] = True
        kw.setdefault("errors", "replace")
    return subprocess.run([str(a) for a in argv], **kw)


def _popen(argv, tmpdir, registry, **kw):
    n = next(_counter)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(str(argv[0])).name)[:24]
    if "ip" == name and len(argv) > 4:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(str(argv[4])).name)[:24]
    opened = []
    out_path = err_path = None
    if "stdout" not in kw:
        out_path = Path(tmpdir) / f"p{n}-{name}.out"
        kw["stdout"] = open(out_path, "wb")
        opened.append(kw["stdout"])
    if "stderr" not in kw:
        err_path = Path(tmpdir) / f"p{n}-{name}.err"
        kw["stderr"] = open(err_path, "wb")
        opened.append(kw["stderr"])
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("start_new_session", True)
    try:
        proc = subprocess.Popen([str(a) for a in argv], **kw)
    finally:
        for f in opened:
            f.close()
    proc.out_path = out_path
    proc.err_path = err_path
    proc.argv = [str(a) for a in argv]
    registry.append(proc)
    return proc


def _cleanup_stale_namespaces():
    """Delete namespaces left behind by earlier test runs that were killed."""
    try:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True,
                               text=True, timeout=10).stdout.split("\n")
    except Exception:
        return
    for line in names:
        m = re.match(r"(mwt(\d+)_\d+_(ins|world))\b", line)
        if not m:
            continue
        pid = int(m.group(2))
        if pid == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        _kill_ns_pids(m.group(1))
        subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True)


def _kill_ns_pids(ns):
    try:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                              text=True, timeout=10).stdout.split()
    except Exception:
        return
    for p in pids:
        try:
            os.kill(int(p), signal.SIGKILL)
        except (OSError, ValueError):
            pass


# --------------------------------------------------------------------------
# topology


class Topo:
    ins4 = "10.77.0.1"
    ins6 = "fd77::1"
    world4 = "10.77.0.2"
    world6 = "fd77::2"
    blackhole4 = "10.77.9.1"

    def __init__(self):
        tag = f"mwt{os.getpid()}_{next(_counter)}"
        self.ins = f"{tag}_ins"
        self.world = f"{tag}_world"
        self.procs = []
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
        os.chmod(self.tmpdir, 0o755)
        self._port = itertools.count(20000 + (os.getpid() % 50) * 100)

    # -- API -------------------------------------------------------------
    def nsexec(self, ns, argv):
        return ["ip", "netns", "exec", ns] + [str(a) for a in argv]

    def run(self, ns, argv, **kw):
        return _run(self.nsexec(ns, argv), **kw)

    def popen(self, ns, argv, **kw):
        return _popen(self.nsexec(ns, argv), self.tmpdir, self.procs, **kw)

    def port(self):
        return next(self._port)

    def listening(self, ns, port, proto="tcp"):
        flag = "-Hltn" if proto == "tcp" else "-Hlun"
        r = _run(["ip", "netns", "exec", ns, "ss", flag], timeout=10)
        for line in r.stdout.splitlines():
            cols = line.split()
            # State Recv-Q Send-Q Local:Port Peer:Port  (UDP: UNCONN ...)
            for c in cols[3:5]:
                if c.endswith(f":{port}"):
                    return True
        return False

    def wait_port(self, ns, port, proto="tcp", timeout=10, proc=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.listening(ns, port, proto):
                return
            if proc is not None and proc.poll() is not None:
                out, err = output(proc)
                pytest.fail(f"{proc.argv} exited with {proc.returncode} before "
                            f"listening on {proto}/{port} in {ns}\n"
                            f"stdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}")
            time.sleep(0.05)
        extra = ""
        if proc is not None:
            out, err = output(proc)
            extra = f"\nstdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}"
        pytest.fail(f"nothing listening on {proto}/{port} in ns {ns} after {timeout}s{extra}")

    stop = staticmethod(stop)

    # -- setup / teardown -------------------------------------------------
    def _ip(self, *args):
        r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def setup(self):
        ins, world = self.ins, self.world
        self._ip("netns", "add", ins)
        self._ip("netns", "add", world)
        for ns in (ins, world):
            self._ip("-n", ns, "link", "set", "lo", "up")
        self._ip("-n", ins, "link", "add", "veth0", "type", "veth",
                 "peer", "name", "veth1", "netns", world)
        self._ip("-n", ins, "addr", "add", "10.77.0.1/24", "dev", "veth0")
        self._ip("-n", ins, "addr", "add", "fd77::1/64", "dev", "veth0", "nodad")
        self._ip("-n", world, "addr", "add", "10.77.0.2/24", "dev", "veth1")
        self._ip("-n", world, "addr", "add", "fd77::2/64", "dev", "veth1", "nodad")
        self._ip("-n", ins, "link", "set", "veth0", "up")
        self._ip("-n", world, "link", "set", "veth1", "up")
        self._ip("-n", ins, "route", "add", "10.77.9.0/24", "via", "10.77.0.2")
        # world must not forward (the default for a new netns; make it explicit)
        for key in ("net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"):
            self.run(world, ["sysctl", "-qw", key], timeout=10)
        self._wait_usable()

    def _wait_usable(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = True
            for ns, dev in ((self.ins, "veth0"), (self.world, "veth1")):
                link = self._ip("-n", ns, "link", "show", "dev", dev)
                if "LOWER_UP" not in link or "state UP" not in link:
                    ok = False
                if self._ip("-n", ns, "-6", "addr", "show", "dev", dev, "tentative").strip():
                    ok = False
                addrs = self._ip("-n", ns, "addr", "show", "dev", dev)
                if "10.77.0." not in addrs or "fd77::" not in addrs:
                    ok = False
            if ok and self._probe():
                return
            time.sleep(0.05)
        raise RuntimeError("veth link / addresses did not become usable in time")

    def _probe(self):
        # a real round trip world -> ins over both families (no ping on the box)
        code = ("import socket,sys\n"
                "for fam,a in ((socket.AF_INET,'10.77.0.1'),(socket.AF_INET6,'fd77::1')):\n"
                "  s=socket.socket(fam,socket.SOCK_STREAM); s.settimeout(1)\n"
                "  try: s.connect((a,9))\n"
                "  except ConnectionRefusedError: pass\n"
                "  except OSError as e: sys.exit(1)\n")
        r = self.run(self.world, [PY, "-c", code], timeout=10)
        return r.returncode == 0

    def teardown(self):
        for p in reversed(self.procs):
            try:
                stop(p, timeout=3)
            except Exception:
                pass
        for ns in (self.ins, self.world):
            _kill_ns_pids(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.tmpdir, ignore_errors=True)


@pytest.fixture(scope="module")
def topo(request):
    if os.geteuid() != 0:
        pytest.fail("the tests create network namespaces and must run as root")
    _cleanup_stale_namespaces()
    t = Topo()
    request.addfinalizer(t.teardown)
    t.setup()
    return t


# --------------------------------------------------------------------------
# mwinsd in ns ins


def start_mwinsd(topo, registry, ins_id, args, out_path, err_path, preexec_fn=None, env=None):
    """Start BUILD/mwinsd in topo's ins namespace and wait (10 s at most) for its --ready-fd line.  Returns
    (the process, the line); fails the test with mwinsd's stderr if it never got ready."""
    r, w = os.pipe()
    try:
        with open(err_path, "wb") as err, (open(out_path, "wb") if out_path != err_path else err) as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", topo.ins, str(BUILD / "mwinsd"),
                 "-r", str(registry), "-i", ins_id, "--ready-fd", str(w)] + [str(a) for a in args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(w,), start_new_session=True,
                preexec_fn=preexec_fn, env=dict(os.environ, **env) if env else None)
    finally:
        os.close(w)
    line = b""
    deadline = time.monotonic() + 10
    try:
        while b"\n" not in line and time.monotonic() < deadline:
            rd, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not rd:
                break
            chunk = os.read(r, 256)
            if not chunk:
                break
            line += chunk
    finally:
        os.close(r)
    if not line:
        if proc.poll() is None:
            stop(proc, timeout=2)
        pytest.fail(f"mwinsd {' '.join(str(a) for a in args)} did not report ready within 10 s "
                    f"(exit status {proc.returncode}); stderr:\n{_read(err_path, 8000)}")
    return proc, line.decode(errors="replace").strip()


class Ins:
    def __init__(self, topo, args=(), env=None):
        self.topo = topo
        self.args = [str(a) for a in args]  # extra mwinsd options (--policy, --ipfix, ...)
        self.env = env  # extra environment for mwinsd
        self.id = "test"
        self.registry = Path(tempfile.mkdtemp(prefix="mwreg-"))
        os.chmod(self.registry, 0o755)
        self.procs = []
        self.proc = None
        self.err_path = topo.tmpdir / "mwinsd.err"
        self.out_path = topo.tmpdir / "mwinsd.out"

    @property
    def sock_dir(self):
        return self.registry / "ins" / self.id

    def mwrun(self, argv):
        return ["ip", "netns", "exec", self.topo.ins, str(BUILD / "mwrun"),
                "-r", str(self.registry), "--"] + [str(a) for a in argv]

    def run(self, argv, **kw):
        return _run(self.mwrun(argv), **kw)

    def popen(self, argv, **kw):
        p = _popen(self.mwrun(argv), self.topo.tmpdir, self.procs, **kw)
        return p

    stop = staticmethod(stop)

    def clients(self):
        """{pid: {'ins':..., 'exe':..., 'sockets':...}} read from REG/clients/."""
        out = {}
        d = self.registry / "clients"
        try:
            entries = list(d.iterdir())
        except OSError:
            return out
        for e in entries:
            vals = {}
            for f in ("ins", "exe", "sockets"):
                try:
                    vals[f] = (e / f).read_text().strip()
                except OSError:
                    vals[f] = None
            out[e.name] = vals
        return out

    def start(self):
        for b in ("mwinsd", "mwrun", "libmwshim.so"):
            if not (BUILD / b).exists():
                pytest.fail(f"{BUILD / b} does not exist: build first (make, or tests/run)")
        self.proc, self.ready_line = start_mwinsd(self.topo, self.registry, self.id, self.args, self.out_path,
                                                  self.err_path, env=self.env)

    def teardown(self):
        problems = stop_all(self.procs)
        if self.proc is not None:
            if self.proc.poll() is not None:
                problems.append(f"mwinsd died during the tests with status {self.proc.returncode}")
            else:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                    if self.proc.returncode != 0:
                        problems.append(f"mwinsd exited {self.proc.returncode} on SIGTERM (expected 0)")
                except subprocess.TimeoutExpired:
                    stop(self.proc, signal.SIGKILL)
                    problems.append("mwinsd did not exit within 5 s of SIGTERM")
            err = _read(self.err_path)
            for pat in SAN_PATTERNS:
                if pat in err:
                    problems.append(f"mwinsd printed a sanitizer report ({pat!r})")
                    break
            if problems:
                problems.append(f"mwinsd stderr:\n{err[-8000:]}")
        shutil.rmtree(self.registry, ignore_errors=True)
        if problems:
            pytest.fail("\n".join(problems))


@pytest.fixture(scope="module")
def ins(topo, request):
    i = Ins(topo)
    request.addfinalizer(i.teardown)
    i.start()
    return i


def ins_with_event_log(topo, request):
    """An mwinsd (torn down with the module) whose event log, i.event_log, records every connection with its
    process: for a module's own `ins` fixture."""
    log = topo.tmpdir / "events.log"
    i = Ins(topo, ["--event-log", log])
    request.addfinalizer(i.teardown)
    i.start()
    i.event_log = log
    return i


# --------------------------------------------------------------------------
# helper programs


_nobody_dir = None


def nobody_bin(extra=None):
    """Where other users (nobody, a test uid) can run mwcomms from: the build directory if uid 65534 can,
    else (a checkout under a 0700 home) a world-readable copy of mwrun, mwinsd, the shim and mwctl, made
    once (mwrun finds mwinsd and the shim beside itself).  extra: a file to copy there too; its copy's path
    is returned instead."""
    global _nobody_dir
    if _nobody_dir is None:
        probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                                'test -x "$1/mwrun" && test -r "$1/libmwshim.so"', "sh", str(BUILD)],
                               capture_output=True, timeout=30)
        if probe.returncode == 0 or not (BUILD / "mwrun").exists():
            _nobody_dir = BUILD
        else:
            d = Path(tempfile.mkdtemp(prefix="mwbin-"))
            os.chmod(d, 0o755)
            atexit.register(shutil.rmtree, d, True)
            for name in ("mwrun", "mwinsd", "libmwshim.so", "mwctl"):
                if (BUILD / name).exists():
                    shutil.copy2(BUILD / name, d / name)
                    os.chmod(d / name, 0o755)
            _nobody_dir = d
    if extra is None:
        return _nobody_dir
    extra = Path(extra)
    if _nobody_dir == BUILD:
        os.chmod(extra, 0o755)
        return extra
    shutil.copy2(extra, _nobody_dir / extra.name)
    os.chmod(_nobody_dir / extra.name, 0o755)
    return _nobody_dir / extra.name


def _compile_helper(name, static=False, shared=False):
    src = HELPERS / f"{name}.c"
    outdir = BUILD / "tests"
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / (name + ("-static" if static else ".so" if shared else ""))
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler to build test helpers")
    argv = [cc, "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o", str(out) + ".tmp", str(src)]
    if static:
        argv.insert(1, "-static")
    if shared:
        argv[1:1] = ["-shared", "-fPIC"]
        argv.append("-ldl")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"compiling {src} failed:\n{r.stderr}")
    os.replace(str(out) + ".tmp", out)
    return out


@pytest.fixture(scope="session")
def helper_bin():
    """helper_bin(name, static=False, shared=False) -> path of BUILD/tests/<name> (.so if shared), compiled on
    demand."""
    return _compile_helper


# --------------------------------------------------------------------------
# an HTTP file server in ns world (tests/helpers/httpfile.py)


def url(addr, port, path=""):
    host = f"[{addr}]" if ":" in addr else addr
    return f"http://{host}:{port}/{path.lstrip('/')}"


def make_file(path, size, seed=None):
    """Write `size` pseudo-random bytes to path; return the sha256 hex digest."""
    import hashlib
    h = hashlib.sha256()
    block = 1 << 20
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(block, left))
            h.update(b)
            f.write(b)
            left -= len(b)
    os.chmod(path, 0o644)
    return h.hexdigest()


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


class WorldHttp:
    def __init__(self, topo):
        self.topo = topo
        self.dir = topo.tmpdir / "www"
        self.dir.mkdir(mode=0o755, exist_ok=True)
        self.log = topo.tmpdir / "httpfile.log"
        self.port = topo.port()
        self.files = {}  # name -> (size, sha256)

    def add(self, name, size):
        sha = make_file(self.dir / name, size)
        self.files[name] = (size, sha)
        return sha

    def url(self, name, family=4):
        return url(self.topo.world4 if family == 4 else self.topo.world6, self.port, name)

    def entries(self):
        """Parsed log lines: dicts with method, path, addr, port, bytes, sha."""
        out = []
        for line in _read(self.log).splitlines():
            f = line.split()
            if len(f) == 6:
                out.append(dict(method=f[0], path=f[1], addr=f[2], port=int(f[3]),
                                bytes=int(f[4]), sha=f[5]))
        return out

    def start(self):
        self.proc = self.topo.popen(self.topo.world, [
            PY, HELPERS / "httpfile.py", "--dir", self.dir, "--port", self.port,
            "--bind", "::", "--log", self.log])
        self.topo.wait_port(self.topo.world, self.port, proc=self.proc)


@pytest.fixture(scope="module")
def world_http(topo):
    """HTTP server in world on both families: GET files added with .add(name,
    size); PUT/POST answer "<sha256> <bytes>"; requests logged (.entries())."""
    w = WorldHttp(topo)
    w.start()
    return w
