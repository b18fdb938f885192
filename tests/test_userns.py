"""mwrun without root: the user-namespace mode (src/run/userns.c).

    root:   ip netns exec INS setpriv --reuid=65534 ... mwrun ...      (mwrun itself runs as nobody)
                                                   |
    [user ns of the command: only 65534 -> 65534 mapped]
      [net ns: lo only]  CMD as uid 65534, no capabilities      [DNS forwarder, joined to both namespaces]
          | shim: control socket + carriers (AF_UNIX)               |
          v                                                         v
    [mwinsd in ns ins: root's (registry REG), or mwrun's embedded one, as nobody] ==veth== [ns world]
                                                                        httpfile.py, dnsmasq, tcpsink

  (a) nobody runs `mwrun -r REG -- curl` against the root-run mwinsd of the module's `ins` fixture: the file
      arrives whole, CMD ran as uid 65534 (mapped to itself, no capabilities) in a network namespace that has
      only lo, and the server saw the INS's address.
  (b) nobody with no live INS: mwrun starts an embedded mwinsd, as nobody, in the namespace mwrun was started
      in (ns ins), with the registry in $XDG_RUNTIME_DIR/mwcomms or /tmp/mwcomms-65534 (mode 0700); it serves
      curl, and is gone afterwards.  A registry directory someone else could have planted is refused.
  (c) names resolve through the forwarder in user-namespace mode (dnsmasq in world, as tests/test_e2e_dns.py
      sets it up), and the forwarder sits in the command's user and network namespaces without capabilities.
  (d) with user namespaces turned off (user.max_user_namespaces = 0), mwrun exits 125, names the sysctl, and
      CMD does not run.
  And: the command can't reach beyond its namespace (a raw connect fails, it can't join the INS's network
  namespace although the embedded INS runs as the same user); root with --userns runs CMD as root inside.
"""

import fcntl
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, PY, _descendants, need, nobody_bin, output, san_check, sha256_file
from test_e2e_dns import NAME, dnsmasq, uniq, wait_queries  # noqa: F401  (dnsmasq is a fixture)
from test_e2e_failclosed import sink  # noqa: F401  (a fixture)


BIN = nobody_bin()

NOBODY = 65534
TMP_REG = Path(f"/tmp/mwcomms-{NOBODY}")
SAN_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
SYSCTL = Path("/proc/sys/user/max_user_namespaces")
_xdg = itertools.count()


def nobody_env(xdg=None, extra=None):
    """A clean environment for nobody: no root's XDG_RUNTIME_DIR, HOME or $MWCOMMS_*."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/", "LANG": "C"}
    for k in SAN_ENV:
        if os.environ.get(k):
            env[k] = os.environ[k]
    if xdg is not None:
        env["XDG_RUNTIME_DIR"] = str(xdg)
    env.update(extra or {})
    return env


def as_nobody(argv, env):
    return (["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", "-i"]
            + [f"{k}={v}" for k, v in env.items()] + [str(a) for a in argv])


def mwrun_nobody(topo, opts, argv, xdg=None, extra_env=None):
    """argv for: in ns ins, as nobody, mwrun OPTS -- ARGV."""
    return topo.nsexec(topo.ins, as_nobody([BIN / "mwrun", *opts, "--", *argv], nobody_env(xdg, extra_env)))


def run(argv, timeout=90):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, errors="replace",
                       timeout=timeout)
    san_check(r.stderr, "mwrun as nobody")
    return r


def kv(stdout):
    """Lines 'key value...' printed by the command's script, as a dict of the rest of each line."""
    out = {}
    for line in stdout.splitlines():
        k, _, v = line.partition(" ")
        out.setdefault(k, v.strip())
    return out


def ns_ino(path):
    return os.stat(path).st_ino


def uid_of(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    return None


def cap_eff(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return None


# What the command reports about itself; then it fetches $URL into $OUT.
WHOAMI = r"""
echo "uid $(id -u)"
echo "gid $(id -g)"
echo "uid_map $(cat /proc/self/uid_map)"
echo "gid_map $(cat /proc/self/gid_map)"
echo "setgroups $(cat /proc/self/setgroups)"
echo "capeff $(grep CapEff /proc/self/status | cut -f2)"
echo "capprm $(grep CapPrm /proc/self/status | cut -f2)"
echo "links $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "userns $(stat -L -c %i /proc/self/ns/user)"
echo "netns $(stat -L -c %i /proc/self/ns/net)"
"""
FETCH = WHOAMI + r"""
curl -sS --fail --max-time 60 -o "$OUT" -w 'http %{http_code} %{local_port}\n' "$URL"
"""


@pytest.fixture(scope="module")
def nobody_ok(topo):
    """nobody must be able to run the build, and have a directory of its own to write in."""
    need("setpriv")
    r = subprocess.run(as_nobody(["sh", "-c", 'test -x "$1/mwrun" && test -x "$1/mwinsd" && '
                                              'test -r "$1/libmwshim.so"', "sh", BIN], nobody_env()),
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.fail(f"{BIN} is not readable and executable by uid {NOBODY}: make it (and its parent "
                    f"directories) world-readable to run these tests")
    d = topo.tmpdir / "nobody"
    d.mkdir(mode=0o700, exist_ok=True)
    os.chown(d, NOBODY, NOBODY)
    return d


@pytest.fixture(scope="module")
def files(world_http):
    world_http.add("userns.bin", 4 * 1024 * 1024 + 7)
    world_http.add("named-userns.bin", 1024 * 1024 + 3)
    return world_http


@pytest.fixture
def xdg(nobody_ok, request):
    """A fresh $XDG_RUNTIME_DIR for nobody (owned by it, mode 0700, as systemd makes them)."""
    d = nobody_ok.parent / f"xdg{next(_xdg)}"   # short: the socket path under it must fit sun_path
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, NOBODY)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tmp_registry():
    """/tmp/mwcomms-65534, removed afterwards if this test made it.  A live INS already in it would make
    mwrun attach instead of starting its own: then the test is skipped."""
    existed = TMP_REG.exists() or TMP_REG.is_symlink()
    if existed and any((TMP_REG / "ins").glob("*/pid")):
        pytest.skip(f"{TMP_REG} is in use on this machine")
    yield existed
    if not existed:
        if TMP_REG.is_symlink() or TMP_REG.is_file():
            TMP_REG.unlink()
        else:
            shutil.rmtree(TMP_REG, ignore_errors=True)


def check_whoami(info, topo):
    assert info["uid"] == str(NOBODY) and info["gid"] == str(NOBODY), info
    # mapped to itself, and nothing else mapped (an unmapped uid would show as 65534 too: the map tells)
    assert info["uid_map"].split() == [str(NOBODY), str(NOBODY), "1"], info
    assert info["gid_map"].split() == [str(NOBODY), str(NOBODY), "1"], info
    assert info["setgroups"] == "deny", info
    assert int(info["capeff"], 16) == 0 and int(info["capprm"], 16) == 0, info
    assert info["links"].split() == ["lo"], info
    assert int(info["userns"]) != ns_ino("/proc/self/ns/user"), "CMD is in the initial user namespace"
    assert int(info["netns"]) != ns_ino(f"/run/netns/{topo.ins}"), "CMD is in mwrun's network namespace"


def check_fetch(info, files, topo, out, name):
    size, sha = files.files[name]
    assert info.get("http", "").split()[:1] == ["200"], info
    assert out.stat().st_size == size and sha256_file(out) == sha, "the file arrived damaged"
    port = int(info["http"].split()[1])
    seen = [e for e in files.entries() if e["method"] == "GET" and e["port"] == port]
    assert seen and seen[-1]["addr"] == topo.ins4, f"the server did not see the INS: {seen[-1:]}"
    out.unlink()


def test_help_names_the_mode():
    r = run([BIN / "mwrun", "--help"], timeout=10)
    assert r.returncode == 0
    assert "--userns" in r.stdout and "On by default when mwrun is not run as root" in r.stdout, r.stdout
    assert "user.max_user_namespaces" in r.stdout and "/tmp/mwcomms-UID" in r.stdout, r.stdout


# ---------------------------------------------------------------- (a) a root-run mwinsd, used by nobody

def test_root_ins_serves_nobody(topo, ins, files, nobody_ok):
    out = nobody_ok / "a.bin"
    r = run(mwrun_nobody(topo, ["-v", "-r", ins.registry], ["sh", "-c", FETCH],
                         extra_env={"OUT": out, "URL": files.url("userns.bin")}))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "using INS test" in r.stderr, f"mwrun did not attach to the root-run INS: {r.stderr}"
    assert "embedded" not in r.stderr, r.stderr
    info = kv(r.stdout)
    check_whoami(info, topo)
    check_fetch(info, files, topo, out, "userns.bin")


def test_raw_connect_fails_closed(topo, ins, sink, helper_bin, nobody_ok):  # noqa: F811
    """A program that makes the connect system call itself reaches world only through the INS, as in root
    mode: mwrun's supervisor (src/run/sup.c) carries it, from inside the user namespace too."""
    prog = nobody_bin(helper_bin("rawconnect"))
    before = len(sink.accepts())
    r = run(mwrun_nobody(topo, ["-r", ins.registry, "--no-dns"], [prog, topo.world4, sink.port]))
    assert r.returncode == 0 and r.stdout.strip() == "connected", (r.returncode, r.stdout, r.stderr)
    deadline = time.monotonic() + 5
    while len(sink.accepts()) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sink.accepts()) == before + 1, f"world saw no connection: {sink.accepts()}"


def test_root_with_userns_stays_root_inside(topo, ins, files, nobody_ok):
    out = topo.tmpdir / "root-userns.bin"
    r = subprocess.run(topo.nsexec(topo.ins, [BIN / "mwrun", "--userns", "-r", ins.registry, "--",
                                              "sh", "-c", FETCH]),
                       capture_output=True, text=True, timeout=90,
                       env=dict(os.environ, OUT=str(out), URL=files.url("userns.bin")))
    san_check(r.stderr, "mwrun --userns")
    assert r.returncode == 0, (r.stdout, r.stderr)
    info = kv(r.stdout)
    assert info["uid"] == "0" and info["uid_map"].split() == ["0", "0", "1"], info
    assert info["links"].split() == ["lo"], info
    assert int(info["userns"]) != ns_ino("/proc/self/ns/user"), info
    check_fetch(info, files, topo, out, "userns.bin")


# ---------------------------------------------------------------- (b) an embedded mwinsd, as nobody

EMBEDDED = WHOAMI + r"""
p=$(cat "$REG"/ins/*/pid)
echo "inspid $p"
# the INS runs as the same user, but in the parent user namespace: its network namespace is out of reach
if nsenter --net=/proc/$p/ns/net true 2>/dev/null; then echo "join yes"; else echo "join no"; fi
i=0; while [ ! -e "$GO" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
curl -sS --fail --max-time 60 -o "$OUT" -w 'http %{http_code} %{local_port}\n' "$URL"
"""


def wait_line(proc, key, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = kv(output(proc)[0])
        if key in info:
            return info
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"the command never printed {key!r}: {output(proc)}")


@pytest.mark.parametrize("where", ["xdg", "tmp"])
def test_embedded_ins_runs_as_nobody(topo, files, nobody_ok, where, request):
    need("nsenter")
    if where == "xdg":
        xdg = request.getfixturevalue("xdg")
        reg = xdg / "mwcomms"
    else:
        request.getfixturevalue("tmp_registry")
        xdg, reg = None, TMP_REG
    out = nobody_ok / f"b-{where}.bin"
    go = topo.tmpdir / f"go-{where}"
    p = topo.popen(topo.ins, as_nobody([BIN / "mwrun", "-v", "--", "sh", "-c", EMBEDDED],
                                       nobody_env(xdg, {"REG": reg, "GO": go, "OUT": out,
                                                        "URL": files.url("userns.bin")})))
    try:
        info = wait_line(p, "join")
        pid = int(info["inspid"])
        # the embedded INS: nobody's, in ns ins (where mwrun was started), filed in nobody's registry
        assert uid_of(pid) == [NOBODY] * 4, uid_of(pid)
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "mwinsd"
        assert ns_ino(f"/proc/{pid}/ns/net") == ns_ino(f"/run/netns/{topo.ins}")
        assert ns_ino(f"/proc/{pid}/ns/user") == ns_ino("/proc/self/ns/user")
        st = reg.stat()
        assert st.st_uid == NOBODY and (st.st_mode & 0o777) == 0o700, oct(st.st_mode)
        assert info["join"] == "no", "CMD joined the INS's network namespace"
        go.touch()
        assert p.wait(timeout=90) == 0, output(p)
    finally:
        topo.stop(p)
    so, se = output(p)
    san_check(se, "mwrun (embedded) as nobody")
    assert f"registry {reg} (yours" in se and "started embedded INS" in se, se
    info = kv(so)
    check_whoami(info, topo)
    check_fetch(info, files, topo, out, "userns.bin")
    # and it is gone, with its entry
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the embedded mwinsd outlived mwrun"
    assert not list((reg / "ins").glob("*/pid")), list((reg / "ins").glob("*/*"))
    assert (reg.stat().st_mode & 0o777) == 0o700


def test_unusable_xdg_falls_back_to_tmp(topo, files, nobody_ok, tmp_registry):
    """An $XDG_RUNTIME_DIR that is not nobody's (root's, here) is passed over for /tmp/mwcomms-65534."""
    r = run(mwrun_nobody(topo, ["-v", "--no-dns"], ["true"], xdg=topo.tmpdir))
    assert r.returncode == 0, r.stderr
    assert f"not using $XDG_RUNTIME_DIR ({topo.tmpdir}): it is owned by uid 0" in r.stderr, r.stderr
    assert f"registry {TMP_REG} (yours" in r.stderr, r.stderr
    assert TMP_REG.stat().st_uid == NOBODY


def plant(reg, how):
    if how == "root-owned":
        reg.mkdir(mode=0o755)
    elif how == "world-writable":
        reg.mkdir()
        os.chown(reg, NOBODY, NOBODY)
        os.chmod(reg, 0o777)
    elif how == "group-writable":
        reg.mkdir()
        os.chown(reg, NOBODY, NOBODY)
        os.chmod(reg, 0o770)
    elif how == "symlink":
        target = reg.parent / (reg.name + "-target")
        target.mkdir(mode=0o700)
        os.chown(target, NOBODY, NOBODY)
        reg.symlink_to(target)


@pytest.mark.parametrize("how,why", [("root-owned", "is owned by uid 0, not by you (uid 65534)"),
                                     ("world-writable", "is writable by everyone (mode 0777)"),
                                     ("group-writable", "is writable by its group (mode 0770)"),
                                     ("symlink", "is not a directory")],
                         ids=["root-owned", "world-writable", "group-writable", "symlink"])
@pytest.mark.parametrize("where", ["xdg", "tmp"])
def test_planted_registry_is_refused(topo, nobody_ok, where, how, why, request):
    if where == "xdg":
        xdg = request.getfixturevalue("xdg")
        reg = xdg / "mwcomms"
    else:
        if request.getfixturevalue("tmp_registry"):
            pytest.skip(f"{TMP_REG} exists on this machine: not replacing it")
        xdg, reg = None, TMP_REG
    marker = nobody_ok / f"ran-{where}-{how}"
    try:
        plant(reg, how)
        r = run(mwrun_nobody(topo, [], ["touch", marker], xdg=xdg))
        assert r.returncode == 125, (r.returncode, r.stderr)
        assert f"mwrun: refusing the registry {reg}: it {why}" in r.stderr, r.stderr
        assert "-r DIR or $MWCOMMS_REGISTRY" in r.stderr, r.stderr
        assert not marker.exists(), "the command ran"
        assert not (reg / "ins").exists(), "an INS was started in the planted registry"
    finally:
        if how == "symlink":
            shutil.rmtree(reg.parent / (reg.name + "-target"), ignore_errors=True)


# ---------------------------------------------------------------- (c) DNS through the forwarder

@pytest.mark.parametrize("which", ["root-ins", "embedded"])
def test_dns_by_name(topo, ins, dnsmasq, files, nobody_ok, which, request):  # noqa: F811
    opts = ["--dns", "10.77.0.2"]
    xdg = None
    if which == "root-ins":
        opts += ["-r", ins.registry]
    else:
        xdg = request.getfixturevalue("xdg")
    r = run(mwrun_nobody(topo, opts, ["getent", "ahosts", NAME], xdg=xdg))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert {l.split()[0] for l in r.stdout.splitlines() if l.strip()} == {"10.77.0.2", "fd77::2"}, r.stdout

    size, sha = files.files["named-userns.bin"]
    out = nobody_ok / f"named-{which}.bin"
    r = run(mwrun_nobody(topo, opts, [need("curl"), "-sS", "--fail", "--max-time", "60", "-o", out,
                                      "-w", "%{http_code}",
                                      f"http://{NAME}:{files.port}/named-userns.bin"], xdg=xdg))
    assert r.returncode == 0 and r.stdout == "200", (r.returncode, r.stdout, r.stderr)
    assert out.stat().st_size == size and sha256_file(out) == sha
    out.unlink()

    # the queries left through the INS
    name = uniq("userns")
    r = run(mwrun_nobody(topo, opts, ["getent", "hosts", name], xdg=xdg,
                         extra_env={"RES_OPTIONS": "timeout:1 attempts:1"}))
    assert r.returncode == 2, (r.returncode, r.stderr)
    q = wait_queries(dnsmasq, name)
    assert q and {src for _, src in q} <= {topo.ins4, topo.ins6}, q


def test_forwarder_joins_the_commands_namespaces(topo, ins, nobody_ok):
    """The forwarder mwrun's parent forks joins CMD's user namespace, then its network namespace, and holds
    no capability once it runs; it ends with mwrun."""
    go = topo.tmpdir / "go-fwd"
    script = 'i=0; while [ ! -e "$GO" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done'
    p = topo.popen(topo.ins, as_nobody([BIN / "mwrun", "-r", ins.registry, "--dns", "10.77.0.2", "--",
                                        "sh", "-c", script], nobody_env(extra={"GO": go})))
    try:
        deadline = time.monotonic() + 20
        fwd = cmd = None
        while time.monotonic() < deadline and not (fwd and cmd):
            for pid in _descendants(p.pid):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if argv[1:2] == [b"--dns-forward"]:
                    fwd = pid
                elif argv[:2] == [b"sh", b"-c"]:
                    cmd = pid
            time.sleep(0.05)
        assert fwd and cmd, f"forwarder {fwd}, command {cmd}: {output(p)}"
        assert ns_ino(f"/proc/{fwd}/ns/net") == ns_ino(f"/proc/{cmd}/ns/net")
        # CMD's own user namespace (src/run/contain.c) is a child of the one the forwarder joined
        fd = os.open(f"/proc/{cmd}/ns/user", os.O_RDONLY)
        try:
            parent = fcntl.ioctl(fd, 0xb702)  # NS_GET_PARENT: a new fd for the parent namespace
            assert os.fstat(parent).st_ino == ns_ino(f"/proc/{fwd}/ns/user"), "user"
            os.close(parent)
        finally:
            os.close(fd)
        assert ns_ino(f"/proc/{fwd}/ns/user") != ns_ino("/proc/self/ns/user")
        assert uid_of(fwd) == [NOBODY] * 4 and uid_of(cmd) == [NOBODY] * 4
        assert cap_eff(fwd) == 0 and cap_eff(cmd) == 0
        go.touch()
        assert p.wait(timeout=30) == 0, output(p)
    finally:
        topo.stop(p)
    san_check(output(p)[1], "mwrun --dns as nobody")
    deadline = time.monotonic() + 5
    while Path(f"/proc/{fwd}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{fwd}").exists(), "the forwarder outlived mwrun"


# ---------------------------------------------------------------- (d) no user namespaces: fail closed

# Run ARGV in a new user namespace in which uids and gids 0-65535 map to themselves (written by us, the
# parent, with root's CAP_SETUID), with that namespace's own user.max_user_namespaces set to 0.
NO_USERNS = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r1, w1 = os.pipe(); r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r1); os.close(w2)
    if libc.unshare(0x10000000) != 0:
        os._exit(99)
    os.write(w1, b"u")
    if os.read(r2, 1) != b"g":
        os._exit(98)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0\n")
    os.execvp(sys.argv[1], sys.argv[1:])
os.close(w1); os.close(r2)
if os.read(r1, 1) == b"u":
    for f in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{f}", "w") as fh:
            fh.write("0 0 65536\n")
    os.write(w2, b"g")
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
"""


def check_refused(r, marker):
    assert r.returncode == 125, (r.returncode, r.stdout, r.stderr)
    assert "mwrun: cannot give the command a user namespace" in r.stderr, r.stderr
    assert "not running the command" in r.stderr, r.stderr
    assert "sysctl user.max_user_namespaces = 0" in r.stderr, r.stderr
    assert "sysctl -w user.max_user_namespaces=" in r.stderr, r.stderr
    assert not marker.exists(), "the command ran without its namespaces"


@pytest.mark.parametrize("scope", ["host", "namespace"])
@pytest.mark.parametrize("ins_kind", ["root-ins", "embedded"])
def test_no_user_namespaces_fails_closed(topo, ins, nobody_ok, scope, ins_kind, request):
    marker = nobody_ok / f"ran-{scope}-{ins_kind}"
    xdg = request.getfixturevalue("xdg") if ins_kind == "embedded" else None
    opts = ["-r", ins.registry] if ins_kind == "root-ins" else []
    inner = as_nobody([BIN / "mwrun", *opts, "--", "touch", marker], nobody_env(xdg))
    if scope == "namespace":
        # the same sysctl, in a user namespace made for the test (nothing on the host changes)
        r = run(topo.nsexec(topo.ins, [PY, "-c", NO_USERNS, *inner]))
        check_refused(r, marker)
        return
    try:
        old = SYSCTL.read_text()
        SYSCTL.write_text("0\n")
    except OSError as e:
        pytest.skip(f"cannot set user.max_user_namespaces on this host ({e.strerror}: it needs "
                    f"CAP_SYS_RESOURCE); the 'namespace' case checks the same refusal")
    try:
        r = run(topo.nsexec(topo.ins, inner))
    finally:
        SYSCTL.write_text(old)
    assert SYSCTL.read_text() == old
    check_refused(r, marker)
