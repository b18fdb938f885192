"""DNS inside mwrun (issue 3): `mwrun --dns ADDR` gives the program a
resolv.conf naming a resolver that mwinsd can reach, here dnsmasq in ns world,
and getent, dig (UDP and TCP), python's getaddrinfo and curl resolve through
it.

glibc's resolver makes its socket calls through libc-internal aliases that no
preload can interpose, so mwrun answers at ADDR:53 inside the command's
namespace with a forwarder that runs under the shim (src/run/dnsfwd.c).
Resolution goes through mwinsd either way: the queries reach dnsmasq from the
INS's address, nothing resolves when no INS answers, and a program without the
shim reaches only the forwarder.

dig's own UDP queries (test_dig[*-udp], test_queries_come_from_the_ins[dig])
need UDP through the channel.  glibc's lookups do not: the forwarder asks over
TCP when UDP gets no answer.  The option itself (the private resolv.conf, its
validation, symlinks) needs no DNS at all."""

import itertools
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BUILD, HELPERS, PY, _descendants, _read, need, sha256_file

NAME = "web.mwtest"
MANY = "many.mwtest"
MANY_N = 60
_uniq = itertools.count()

# Short resolver timeouts for the lookups that are meant to fail, so that they fail fast.
FAST_FAIL = {"RES_OPTIONS": "timeout:1 attempts:1"}


def need_sbin(tool):
    """need(), also looking in the sbin directories (dnsmasq lives in /usr/sbin)."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin") or need(tool)


def uniq(tag):
    return f"{tag}-{os.getpid()}-{next(_uniq)}.mwtest"


def mwrun_argv(topo, ins, argv, opts=("--dns", "10.77.0.2")):
    return (["ip", "netns", "exec", topo.ins, str(BUILD / "mwrun"), "-r", str(ins.registry)]
            + list(opts) + ["--"] + [str(a) for a in argv])


def run_dns(topo, ins, argv, opts=("--dns", "10.77.0.2"), env=None, timeout=60):
    e = dict(os.environ)
    e.pop("MWCOMMS_DNS", None)
    e.update(env or {})
    return subprocess.run(mwrun_argv(topo, ins, argv, opts), capture_output=True, text=True,
                          errors="replace", timeout=timeout, env=e)


@pytest.fixture(scope="module")
def dnsmasq(topo):
    exe = need_sbin("dnsmasq")
    log = topo.tmpdir / "dnsmasq.log"
    p = topo.popen(topo.world, [
        exe, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file=",
        "--listen-address=10.77.0.2,fd77::2", "--bind-interfaces", "--port=53",
        f"--host-record={NAME},10.77.0.2,fd77::2", "--local=/mwtest/",
        # a name whose answer does not fit 512 bytes: over UDP it comes back truncated, and the
        # resolver asks again over TCP
        *[f"--host-record={MANY},10.77.1.{i}" for i in range(1, MANY_N + 1)],
        "--log-queries", f"--log-facility={log}"])
    topo.wait_port(topo.world, 53, proto="udp", proc=p)
    topo.wait_port(topo.world, 53, proto="tcp", proc=p)
    # it answers in world, over both transports
    for extra in ([], ["+tcp"]):
        r = topo.run(topo.world, [need("dig"), "+short", "+time=2", "+tries=2", *extra, NAME, "@10.77.0.2"],
                     timeout=30)
        assert r.stdout.split() == ["10.77.0.2"], f"dnsmasq does not answer in world: {r.stdout} {r.stderr}"

    class D:
        pass
    d = D()
    d.proc, d.log = p, log
    d.queries = lambda name: re.findall(rf"query\[(\w+)\] {re.escape(name)} from (\S+)", _read(log))
    return d


@pytest.fixture(scope="module")
def web(world_http):
    world_http.add("named.bin", 3 * 1024 * 1024 + 11)
    return world_http


# ---------------------------------------------------------------- the option itself (TCP-free)

@pytest.mark.parametrize("bad", ["1.2.3", "web.mwtest", "10.77.0.2,", ",10.77.0.2", "10.77.0.2,,fd77::2",
                                 "fd77::2%veth0", "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", "",
                                 "0.0.0.0", "::", "::ffff:10.77.0.2", "ff02::1"])
def test_dns_option_rejects_bad_addresses(topo, ins, bad):
    marker = topo.tmpdir / f"ran-{next(_uniq)}"
    for opts, env in ((("--dns", bad), None), ((), {"MWCOMMS_DNS": bad})):
        if env and bad == "":
            continue  # an empty $MWCOMMS_DNS means "not set"
        r = run_dns(topo, ins, ["touch", marker], opts=opts, env=env, timeout=30)
        assert r.returncode == 125, (opts, env, r.returncode, r.stderr)
        assert r.stderr.startswith("mwrun: ") and ("--dns" in r.stderr or "MWCOMMS_DNS" in r.stderr), r.stderr
        assert not marker.exists(), "the command ran although --dns was bad"


def resolv_lines(text):
    return [l.split() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


def test_resolv_conf_is_the_programs_own(topo, ins):
    host_before = open("/etc/resolv.conf", "rb").read()
    mounts_before = open("/proc/self/mountinfo").read().count("mwrun-dns")

    r = run_dns(topo, ins, ["cat", "/etc/resolv.conf"], opts=("--dns", "10.77.0.2,fd77::2"))
    assert r.returncode == 0, r.stderr
    assert resolv_lines(r.stdout) == [["nameserver", "10.77.0.2"], ["nameserver", "fd77::2"]], r.stdout

    # $MWCOMMS_DNS is the default, and --dns wins over it
    r = run_dns(topo, ins, ["cat", "/etc/resolv.conf"], opts=(), env={"MWCOMMS_DNS": "fd77::2"})
    assert r.returncode == 0, r.stderr
    assert resolv_lines(r.stdout) == [["nameserver", "fd77::2"]], r.stdout
    r = run_dns(topo, ins, ["cat", "/etc/resolv.conf"], opts=("--dns", "10.77.0.2"),
                env={"MWCOMMS_DNS": "fd77::2"})
    assert resolv_lines(r.stdout) == [["nameserver", "10.77.0.2"]], r.stdout

    # without either, the program resolves through the host's own nameservers (via the forwarder)
    host_ns = [l.split()[1] for l in host_before.decode().splitlines()
               if l.split()[:1] == ["nameserver"] and len(l.split()) > 1 and "%" not in l.split()[1]]
    r = run_dns(topo, ins, ["cat", "/etc/resolv.conf"], opts=())
    assert r.returncode == 0, r.stderr
    if host_ns:
        assert resolv_lines(r.stdout) == [["nameserver", a] for a in host_ns[:3]], r.stdout
    else:
        assert r.stdout.encode() == host_before

    # --no-dns: the host's file unchanged, and no forwarder
    r = run_dns(topo, ins, ["cat", "/etc/resolv.conf"], opts=("--no-dns",))
    assert r.returncode == 0, r.stderr
    assert r.stdout.encode() == host_before

    # nothing leaked into the host: its file and its mount table are as they were
    assert open("/etc/resolv.conf", "rb").read() == host_before
    assert open("/proc/self/mountinfo").read().count("mwrun-dns") == mounts_before
    # and the program's children share its view (a forked shell, then cat)
    r = run_dns(topo, ins, ["sh", "-c", "cat /etc/resolv.conf | grep -c '^nameserver'"],
                opts=("--dns", "10.77.0.2"))
    assert r.stdout.strip() == "1", (r.stdout, r.stderr)


SYMLINK_SCRIPT = r"""
set -e
mount --make-rprivate /
mount --bind "$ETC" /etc
rm -f /etc/resolv.conf
case "$CASE" in
existing)  mkdir -p "$T/run"; printf 'nameserver 192.0.2.53\n' > "$T/run/stub.conf"
           ln -s "$T/run/stub.conf" /etc/resolv.conf ;;
dangling)  mkdir -p "$T/run"; ln -s "..$T/run/stub.conf" /etc/resolv.conf ;;   # relative
nodir)     ln -s "$T/nowhere/stub.conf" /etc/resolv.conf ;;
missing)   ;;
esac
set +e
ip netns exec "$INS" "$MWRUN" -r "$REG" --dns 10.77.0.2 -- cat /etc/resolv.conf
echo "rc=$?"
echo "after:"
cat "$T/run/stub.conf" 2>/dev/null || echo "(no stub)"
ls -A "$T/run" 2>/dev/null || true
"""


@pytest.mark.parametrize("case", ["existing", "dangling", "nodir", "missing"])
def test_resolv_conf_symlinks(topo, ins, case, tmp_path):
    """/etc/resolv.conf as a symlink (systemd-resolved's layout), a dangling one,
    and none at all, each staged in a private mount namespace over a copy of
    /etc, so the host's /etc is never touched."""
    need("unshare")
    etc = tmp_path / "etc"
    subprocess.run(["cp", "-a", "/etc/.", str(etc)], capture_output=True, timeout=120)
    assert (etc / "passwd").exists(), "could not copy /etc"
    t = tmp_path / "t"
    t.mkdir()
    env = dict(os.environ, ETC=str(etc), T=str(t), CASE=case, INS=topo.ins, MWRUN=str(BUILD / "mwrun"),
               REG=str(ins.registry))
    env.pop("MWCOMMS_DNS", None)
    r = subprocess.run(["unshare", "-m", "sh", "-c", SYMLINK_SCRIPT], capture_output=True, text=True,
                       timeout=60, env=env)
    out = r.stdout
    assert r.returncode == 0, (out, r.stderr)
    prog, _, after = out.partition("after:")
    if case in ("existing", "dangling"):
        assert "rc=0" in prog, (out, r.stderr)
        assert resolv_lines(prog.replace("rc=0", "")) == [["nameserver", "10.77.0.2"]], out
        if case == "existing":
            # the link's target was covered in the program's namespace, not rewritten
            assert "nameserver 192.0.2.53" in after, out
        else:
            # the file was made in a private tmpfs: nothing appeared in the real directory
            assert "(no stub)" in after and "stub.conf" not in after, out
    else:
        assert "rc=125" in prog, (out, r.stderr)
        assert "mwrun: --dns:" in r.stderr and "/etc/resolv.conf" in r.stderr, r.stderr
        assert "nameserver" not in prog, out


MANY_NS_SCRIPT = r"""
set -e
mount --make-rprivate /
printf 'nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n' > "$T/resolv.conf"
mount --bind "$T/resolv.conf" /etc/resolv.conf
exec ip netns exec "$INS" "$MWRUN" -r "$REG" -- cat /etc/resolv.conf
"""


def test_host_with_more_nameservers_than_glibc_reads(topo, ins, tmp_path):
    """A host resolv.conf naming four nameservers (staged in a private mount namespace): the command runs, with
    the first three, as glibc's resolver would read them."""
    need("unshare")
    env = dict(os.environ, T=str(tmp_path), INS=topo.ins, MWRUN=str(BUILD / "mwrun"), REG=str(ins.registry))
    env.pop("MWCOMMS_DNS", None)
    r = subprocess.run(["unshare", "-m", "sh", "-c", MANY_NS_SCRIPT], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert resolv_lines(r.stdout) == [["nameserver", f"192.0.2.{i}"] for i in (1, 2, 3)], r.stdout


# ---------------------------------------------------------------- resolving through the channel

def test_getent_hosts(topo, ins, dnsmasq):
    r = run_dns(topo, ins, ["getent", "hosts", NAME])
    assert r.returncode == 0, f"getent hosts {NAME} under mwrun --dns failed ({r.returncode}): {r.stderr}"
    f = r.stdout.split()
    assert f[0] in ("10.77.0.2", "fd77::2") and NAME in f[1:], r.stdout

    r = run_dns(topo, ins, ["getent", "ahosts", NAME])
    assert r.returncode == 0, r.stderr
    addrs = {l.split()[0] for l in r.stdout.splitlines() if l.strip()}
    assert addrs == {"10.77.0.2", "fd77::2"}, r.stdout

    # a name the resolver does not know: a prompt "not found" (NXDOMAIN), not a timeout
    t0 = time.monotonic()
    r = run_dns(topo, ins, ["getent", "hosts", uniq("nope")])
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert time.monotonic() - t0 < 8, "the NXDOMAIN answer took as long as a timeout"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("qtype", ["A", "AAAA"])
def test_dig(topo, ins, dnsmasq, transport, qtype):
    dig = need("dig")
    want = ["10.77.0.2"] if qtype == "A" else ["fd77::2"]
    extra = ["+tcp"] if transport == "tcp" else ["+notcp"]
    # the server named explicitly, and the one from resolv.conf
    for server in (["@10.77.0.2"], []):
        r = run_dns(topo, ins, [dig, "+short", "+time=3", "+tries=2", *extra, qtype, NAME, *server])
        assert r.returncode == 0 and r.stdout.split() == want, \
            f"dig {transport} {qtype} {server} under mwrun: rc={r.returncode} out={r.stdout!r} err={r.stderr!r}"


@pytest.mark.parametrize("family,want", [("unspec", ["10.77.0.2", "fd77::2"]), ("inet", ["10.77.0.2"]),
                                         ("inet6", ["fd77::2"])])
def test_python_getaddrinfo(topo, ins, dnsmasq, family, want):
    r = run_dns(topo, ins, [PY, HELPERS / "resolve.py", NAME, family])
    assert r.returncode == 0, f"getaddrinfo({NAME}, {family}) under mwrun: {r.stdout} {r.stderr}"
    assert r.stdout.strip() == str(want).replace("'", '"'), r.stdout


@pytest.mark.xfail(strict=True, reason="the program's namespace has only loopback, so getaddrinfo with "
                   "AI_ADDRCONFIG and one family finds no configured address of it and fails before asking "
                   "DNS (glibc ignores loopback addresses for AI_ADDRCONFIG)")
def test_python_getaddrinfo_addrconfig(topo, ins, dnsmasq):
    r = run_dns(topo, ins, [PY, HELPERS / "resolve.py", NAME, "inet", "--addrconfig"])
    assert r.returncode == 0 and r.stdout.strip() == '["10.77.0.2"]', (r.stdout, r.stderr)


@pytest.mark.parametrize("family", [None, 4, 6])
def test_curl_by_name(topo, ins, dnsmasq, web, family):
    curl = need("curl")
    size, sha = web.files["named.bin"]
    out = topo.tmpdir / f"named-{family}.bin"
    fam = [f"-{family}"] if family else []
    r = run_dns(topo, ins, [curl, "-sS", "--fail", "--max-time", "60", *fam, "-o", out,
                            "-w", "%{http_code} %{remote_ip}", f"http://{NAME}:{web.port}/named.bin"],
                timeout=90)
    assert r.returncode == 0, f"curl {fam} http://{NAME}/ under mwrun --dns failed ({r.returncode}): {r.stderr}"
    code, ip = r.stdout.split()
    assert code == "200"
    if family == 4:
        assert ip == "10.77.0.2"
    elif family == 6:
        assert ip == "fd77::2"
    assert out.stat().st_size == size and sha256_file(out) == sha
    # the server saw the request come from the INS
    seen = [e for e in web.entries() if e["path"] == "/named.bin" and e["method"] == "GET"]
    assert seen and seen[-1]["addr"] in ("10.77.0.1", "fd77::1", "::ffff:10.77.0.1"), seen[-1:]


def test_resolver_over_tcp(topo, ins, dnsmasq):
    """glibc's resolver over TCP (options use-vc): needs only the TCP channel."""
    r = run_dns(topo, ins, ["getent", "ahosts", NAME], env={"RES_OPTIONS": "use-vc"})
    assert r.returncode == 0, f"getent ahosts over TCP under mwrun: {r.returncode} {r.stderr}"
    assert {l.split()[0] for l in r.stdout.splitlines() if l.strip()} == {"10.77.0.2", "fd77::2"}, r.stdout
    r = run_dns(topo, ins, [PY, HELPERS / "resolve.py", NAME], env={"RES_OPTIONS": "use-vc"})
    assert r.returncode == 0 and r.stdout.strip() == '["10.77.0.2", "fd77::2"]', (r.stdout, r.stderr)


def test_big_answer_falls_back_to_tcp(topo, ins, dnsmasq):
    """60 A records (over 512 bytes): glibc gets a truncated UDP answer and asks
    again over TCP; both go through the forwarder and mwinsd."""
    r = run_dns(topo, ins, ["getent", "ahosts", MANY])
    assert r.returncode == 0, (r.returncode, r.stderr)
    got = {l.split()[0] for l in r.stdout.splitlines() if l.strip()}
    assert got == {f"10.77.1.{i}" for i in range(1, MANY_N + 1)}, sorted(got)
    dig = need("dig")
    r = run_dns(topo, ins, [dig, "+short", "+time=3", "+tries=2", "+ignore", "+noedns", MANY, "@10.77.0.2"])
    assert r.returncode == 0 and len(r.stdout.split()) < MANY_N, r.stdout   # the truncated UDP answer
    r = run_dns(topo, ins, [dig, "+short", "+time=3", "+tries=2", "+noedns", MANY, "@10.77.0.2"])
    assert sorted(r.stdout.split()) == sorted(f"10.77.1.{i}" for i in range(1, MANY_N + 1)), r.stdout


LOOKUPS = """
import socket, sys, threading, time
names = sys.argv[1:]
res, lock = [], threading.Lock()
def one(i):
    name = names[i % len(names)]
    try:
        out = sorted({a[4][0] for a in socket.getaddrinfo(name, 80, 0, socket.SOCK_STREAM)})
    except socket.gaierror as e:
        out = ["gaierror", e.errno]
    with lock:
        res.append((name, out))
t0 = time.monotonic()
ts = [threading.Thread(target=one, args=(i,)) for i in range(100)]
for t in ts: t.start()
for t in ts: t.join(60)
print(len(res), round(time.monotonic() - t0, 2))
for name, out in sorted(res, key=str):
    print(name, *out)
"""


def test_many_concurrent_lookups(topo, ins, dnsmasq):
    """100 threads resolving at once through glibc, the forwarder and mwinsd."""
    nx = uniq("nx")
    r = run_dns(topo, ins, [PY, "-c", LOOKUPS, NAME, nx], timeout=90)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[0] == "100", lines[0]
    ok = [l for l in lines[1:] if l.startswith(NAME)]
    bad = [l for l in lines[1:] if l.startswith(nx)]
    assert len(ok) == 50 and all(l.split()[1:] == ["10.77.0.2", "fd77::2"] for l in ok), ok[:5]
    assert len(bad) == 50 and all(l.split()[1] == "gaierror" and l.split()[2] == str(socket.EAI_NONAME)
                                  for l in bad), bad[:5]


# ---------------------------------------------------------------- through mwinsd, and only through it

def wait_queries(dnsmasq, name, timeout=3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = dnsmasq.queries(name)
        if q:
            return q
        time.sleep(0.05)
    return dnsmasq.queries(name)


@pytest.mark.parametrize("tool", ["getent", "dig"])
def test_queries_come_from_the_ins(topo, ins, dnsmasq, tool):
    name = uniq("who")
    argv = (["getent", "hosts", name] if tool == "getent"
            else [need("dig"), "+time=2", "+tries=1", name, "@10.77.0.2"])
    r = run_dns(topo, ins, argv, env=FAST_FAIL)
    # NXDOMAIN either way; what matters is who asked
    q = wait_queries(dnsmasq, name)
    assert q, f"dnsmasq never saw {name} ({tool} rc={r.returncode} out={r.stdout!r} err={r.stderr!r})"
    assert {src for _, src in q} <= {topo.ins4, topo.ins6}, f"queries for {name} came from {q}"
    if tool == "dig":
        assert "NXDOMAIN" in r.stdout, r.stdout


def test_no_ins_no_resolution(topo, ins, dnsmasq):
    """With no INS answering, the program has only loopback: nothing resolves and
    no query reaches the resolver."""
    dead = topo.tmpdir / "no-such-ins.sock"
    name = uniq("noins")
    opts = ("-s", str(dead), "--dns", "10.77.0.2")
    r = run_dns(topo, ins, ["getent", "hosts", name], opts=opts, env=FAST_FAIL, timeout=60)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    r = run_dns(topo, ins, [need("dig"), "+short", "+time=1", "+tries=1", name, "@10.77.0.2"],
                opts=opts, timeout=60)
    assert r.returncode != 0 and "10.77.0.2" not in r.stdout, (r.returncode, r.stdout, r.stderr)
    time.sleep(0.5)
    assert dnsmasq.queries(name) == [], "a query reached the resolver with no INS"


def command_pid(mwrun_proc, comm, timeout=10):
    """The pid of the command mwrun started (found by its comm among mwrun's descendants)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in _descendants(mwrun_proc.pid):
            try:
                if open(f"/proc/{pid}/comm").read().strip() == comm:
                    return pid
            except OSError:
                pass
        time.sleep(0.05)
    pytest.fail(f"no {comm} under mwrun after {timeout}s")


def test_without_the_shim_only_the_forwarder_answers(topo, ins, dnsmasq):
    """Programs run in the command's namespace without the shim at all (nsenter
    from outside, as a static or raw-syscall program would be): a query to a
    configured nameserver is answered, by the forwarder, through mwinsd (dnsmasq
    sees the INS's address); one to any other address, or any other traffic,
    goes nowhere."""
    dig = need("dig")
    nsenter = need("nsenter")
    holder = topo.popen(topo.ins, [BUILD / "mwrun", "-r", ins.registry, "--dns", "10.77.0.2", "--",
                                   "sleep", "60"])
    try:
        pid = command_pid(holder, "sleep")
        ns = [nsenter, "-t", pid, "-n"]
        for extra in ([], ["+tcp"]):
            name = uniq("noshim")
            r = topo.run(topo.ins, ns + [dig, "+time=3", "+tries=1", *extra, name, "@10.77.0.2"], timeout=30)
            assert "NXDOMAIN" in r.stdout, (extra, r.stdout, r.stderr)
            q = wait_queries(dnsmasq, name)
            assert q and {src for _, src in q} <= {topo.ins4, topo.ins6}, q
        # fd77::2 is dnsmasq too, but not a configured nameserver: no route, nothing sent
        name = uniq("notconfigured")
        r = topo.run(topo.ins, ns + [dig, "+time=1", "+tries=1", name, "@fd77::2"], timeout=30)
        assert r.returncode != 0 and "NXDOMAIN" not in r.stdout, (r.stdout, r.stderr)
        # other traffic: to the nameserver's address it stays in the namespace (the address is
        # routed locally, to the forwarder, which serves only port 53), to any other it has no route
        code = ("import socket,sys\n"
                "for a in sys.argv[1:]:\n"
                " try: socket.create_connection((a, 80), 3); print('connected')\n"
                " except OSError as e: print(e.errno)\n")
        r = topo.run(topo.ins, ns + [PY, "-c", code, "10.77.0.2", "10.77.0.3", "fd77::2"], timeout=30)
        assert r.stdout.split() == ["111", "101", "101"], r.stdout   # ECONNREFUSED, ENETUNREACH
        time.sleep(0.5)
        assert dnsmasq.queries(name) == [], "a query to an unconfigured address left the namespace"
    finally:
        topo.stop(holder)


def forwarders():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if len(cmd) > 1 and cmd[1] == b"--dns-forward":
                out.append(int(d))
    return set(out)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_forwarder_ends_with_mwrun(topo, ins, how):
    before = forwarders()
    p = topo.popen(topo.ins, [BUILD / "mwrun", "-r", ins.registry, "--dns", "10.77.0.2", "--", "sleep",
                              "2" if how == "exit" else "60"])
    command_pid(p, "sleep")
    mine = forwarders() - before
    assert len(mine) == 1, f"expected one forwarder for this mwrun, found {mine}"
    if how == "exit":
        assert p.wait(timeout=30) == 0
    else:
        os.kill(p.pid, 9)
        p.wait(timeout=10)
    deadline = time.monotonic() + 5
    while mine & forwarders() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not mine & forwarders(), "the DNS forwarder outlived its mwrun"
    topo.stop(p)
