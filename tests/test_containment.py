"""Containment: a program under mwrun, root or not, can't leave the channel or see past it (src/run/contain.c,
src/run/gate.c; docs/design.md, "Containment").

    [ns app: mwrun's, lo only]            the attacker: tests/helpers/escape.c (static: no shim), python
       | carriers, control socket           under mwrun as root, as root with --userns, and as nobody
       v
    [ns ins: mwinsd (policy: world denied), its registry, /tmp/engine.sock (a container engine's stand-in)]
       ==veth==
    [ns world: an HTTP server]

mwinsd's policy denies every connect to world, so any answer from world means the program got out around
mwinsd.  Each attempt runs once directly (root in ns ins, no mwrun): it must get what it was after there (world,
a namespace, mwinsd's memory, a writable registry), so each case can fail; then under each mwrun mode, where it
must fail with the exact error the mechanism gives.
"""

import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BUILD, Ins, _compile_helper as _helper, _descendants, need, nobody_bin, san_check)

MODES = ["root", "root-userns", "root-mapped", "user"]
ROOT_MAP = 200000  # root-mapped: mwrun --map-root-to, ids 0-65535 inside are 200000.. outside


def unix_listener(topo, name, mode):
    """A listening AF_UNIX socket of root's, with mode, at TMPDIR/name/name.sock (the directory 0755)."""
    d = Path(topo.tmpdir) / name
    d.mkdir()
    os.chmod(d, 0o755)
    path = d / f"{name}.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    os.chmod(path, mode)
    srv.listen(16)
    return srv, path


@pytest.fixture(scope="module")
def setup(topo, world_http, request):
    world_http.add("escape-probe", 100)
    policy = topo.tmpdir / "contain.policy"
    policy.write_text("deny name=no-world op=connect,send remote=10.77.0.0/24\n"
                      "deny name=no-world6 op=connect,send remote=fd77::/64\n")
    metrics_port = topo.port()
    ins = Ins(topo, ["--policy", policy, "--metrics", f"127.0.0.1:{metrics_port}"])
    request.addfinalizer(ins.teardown)
    ins.start()
    os.chmod(policy, 0o644)
    escape = _helper("escape", static=True)
    nb_escape = nobody_bin(escape)
    bins = nobody_bin()

    # a container engine's stand-in: a host AF_UNIX socket anyone may write, that greets whoever connects
    srv, engine_path = unix_listener(topo, "engine", 0o666)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.sendall(b"ENGINE-API\n")
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    request.addfinalizer(srv.close)

    class S:
        pass
    s = S()
    s.topo, s.ins, s.policy, s.escape, s.bins, s.engine = topo, ins, policy, escape, bins, engine_path
    s.nb_escape = nb_escape
    s.metrics_port = metrics_port
    s.world_port = world_http.port
    s.mwinsd_pid = ins.proc.pid
    s.sock = ins.sock_dir / "ins.sock"
    return s


def argv_for(s, mode, argv, mwrun_opts=()):
    """argv run in ns ins: directly (mode "direct"), or under mwrun in the given mode."""
    if mode == "direct":
        return s.topo.nsexec(s.topo.ins, argv)
    # the modes whose command runs as a uid other than the host's root use the world-readable binaries
    mw = [str(s.bins / "mwrun") if mode in ("user", "root-mapped") else str(BUILD / "mwrun"), "-r",
          str(s.ins.registry), "-s", str(s.sock), "--no-dns", *mwrun_opts]
    if mode == "root-userns":
        mw.append("--userns")
    if mode == "root-mapped":
        mw += ["--map-root-to", str(ROOT_MAP)]
    if mode == "user":
        mw = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + mw
    return s.topo.nsexec(s.topo.ins, mw + ["--"] + [str(a) for a in argv])


def attempt(s, mode, what, arg="", mwrun_opts=()):
    exe = s.nb_escape if mode in ("user", "root-mapped") else s.escape
    r = subprocess.run(argv_for(s, mode, [exe, what, s.topo.world4, s.world_port, arg], mwrun_opts),
                       capture_output=True, text=True, errors="replace", timeout=60)
    san_check(r.stderr, "mwrun")
    lines = [l.split(None, 2) for l in r.stdout.splitlines() if l.startswith(what + " ")]
    assert lines, f"{what} {arg} ({mode}): no result (exit {r.returncode}): {r.stdout} {r.stderr}"
    return [l[1:] for l in lines], r


def last(res):
    return " ".join(res[-1])


# (attempt, argument (from the setup), what it gets directly, what it must get under mwrun: {mode: outcomes})
def cases(s):
    ins_pid, ns = str(s.mwinsd_pid), s.topo.ins
    reg_sock_file = str(s.ins.sock_dir / "sock")
    either = {"blocked EROFS", "blocked EACCES"}  # a read-only mount, or a file its uid may not write
    wr = {"root": {"blocked EROFS"}, "root-userns": {"blocked EROFS"}, "root-mapped": either, "user": either}
    all_modes = lambda *o: {m: set(o) for m in MODES}  # noqa: E731
    return {
        "setns-by-pid": ("setns", f"/proc/{ins_pid}/ns/net", "reached", all_modes("blocked ENOENT")),
        "setns-pinned": ("setns", f"/run/netns/{ns}", "reached", all_modes("blocked EPERM")),
        "setns-init": ("setns", "/proc/1/ns/net", "joined", all_modes("blocked EACCES", "blocked EPERM")),
        # carried through the INS by mwrun's supervisor (src/run/sup.c), so its policy (no world) applies
        "raw-connect": ("raw", "", "reached", all_modes("blocked ECONNREFUSED")),
        "ptrace-mwinsd": ("ptrace", ins_pid, "done attached", all_modes("blocked ESRCH")),
        "vmread-mwinsd": ("vmread", ins_pid, "done read", all_modes("blocked ESRCH")),
        "signal-mwinsd": ("kill", ins_pid, "done signalled", all_modes("blocked ESRCH")),
        # any host process, mwrun included: the test runner stands in (mwrun's own pid is not known ahead)
        "signal-host": ("kill", str(os.getpid()), "done signalled", all_modes("blocked ESRCH")),
        "environ-mwinsd": ("read", f"/proc/{ins_pid}/environ", "done read", all_modes("blocked ENOENT")),
        "mem-mwinsd": ("read", f"/proc/{ins_pid}/mem", "done read", all_modes("blocked ENOENT")),
        "event-stream": ("unix", str(s.ins.sock_dir / "events"), "done open", all_modes("blocked EACCES")),
        "control-api": ("unix", str(s.ins.sock_dir / "ctl"), "done {\"ok\":true", all_modes("blocked EACCES")),
        "host-unix": ("unix", str(s.engine), "done ENGINE-API_", all_modes("blocked EACCES")),
        "registry-rewrite": ("write", reg_sock_file, "done writable", wr),
        "policy-rewrite": ("write", str(s.policy), "done writable", wr),
        "fake-ins": ("mkdir", str(s.ins.registry / "ins" / "fake"), "done made", wr),
        "io-uring-connect": ("uring", "", "reached", all_modes("blocked ENOSYS")),
        "mount-proc": ("mountproc", ins_pid, "done sees-it", all_modes("blocked EPERM")),
        "chroot-escape": ("chroot", ins_pid, "done sees-it",
                          {"root": {"blocked ENOENT"}, "root-userns": {"blocked ENOENT"},
                           "root-mapped": {"blocked ENOENT"}, "user": {"blocked EPERM"}}),
        "pivot-root": ("pivot", reg_sock_file, "done writable",
                       {"root": {"blocked EROFS"}, "root-userns": {"blocked EROFS"}, "root-mapped": either,
                        "user": {"blocked EPERM"}}),
    }


CASES = ["setns-by-pid", "setns-pinned", "setns-init", "raw-connect", "ptrace-mwinsd", "vmread-mwinsd",
         "signal-mwinsd", "signal-host", "environ-mwinsd", "mem-mwinsd", "event-stream", "control-api",
         "host-unix", "registry-rewrite", "policy-rewrite", "fake-ins", "io-uring-connect", "mount-proc",
         "chroot-escape", "pivot-root"]


@pytest.mark.parametrize("case", CASES)
def test_attempt(setup, case):
    what, arg, direct, under = cases(setup)[case]
    try:
        # PID 1 of the host may be out of reach in a test machine's own sandbox: directly, the host's network
        # namespace is named by our own pid instead (under mwrun, /proc/1 is mwrun's init)
        res, r = attempt(setup, "direct", what, f"/proc/{os.getpid()}/ns/net" if case == "setns-init" else arg)
        outcomes = [" ".join(o) for o in res]
        assert direct in outcomes or any(o.startswith(direct) for o in outcomes), \
            f"{case}: directly it should get '{direct}', got {outcomes}: the test can't tell"
        for mode in MODES:
            res, r = attempt(setup, mode, what, arg)
            got = last(res)
            assert got in under[mode], f"{case} under mwrun ({mode}): {got}, expected one of {under[mode]}\n" \
                                       f"{r.stdout}{r.stderr}"
            assert "reached" not in r.stdout and "joined" not in r.stdout, f"{case} ({mode}) got out: {r.stdout}"
    finally:
        for d in Path("/tmp").glob("escape-*"):
            shutil.rmtree(d, ignore_errors=True)
    assert setup.ins.proc.poll() is None, "mwinsd died"


def test_allowed_unix_reaches_only_what_is_named(setup):
    """--allow-unix PATH lets the host socket through; mwinsd itself still refuses a protected program on its
    event stream and control API even when mwrun lets the connect through."""
    for mode in MODES:
        res, r = attempt(setup, mode, "unix", str(setup.engine), ("--allow-unix", str(setup.engine)))
        assert last(res) == "done ENGINE-API_", f"{mode}: {r.stdout}{r.stderr}"
        for name in ("events", "ctl"):
            path = str(setup.ins.sock_dir / name)
            res, r = attempt(setup, mode, "unix", path, ("--allow-unix", path))
            assert last(res) in ("done closed", "blocked EACCES", "done ECONNRESET"), \
                f"{name} with --allow-unix ({mode}): {r.stdout}{r.stderr}"
    err = (setup.ins.err_path).read_text(errors="replace")
    assert "refused: it runs in a loopback-only network namespace" in err, err[-3000:]


METRICS = r"""
import socket, sys
try:
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    s = socket.create_connection((host, int(sys.argv[1])), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    print("answer", s.recv(100).split(b"\r\n")[0].decode())
except OSError as e:
    print("error", e.errno)
"""


def test_metrics_endpoint_is_not_for_programs(setup):
    """The metrics endpoint, on mwinsd's loopback: reached through the channel it would be mwinsd talking to
    itself on the program's behalf.  Directly it answers; through mwinsd the connect is refused."""
    py = "/usr/bin/python3"
    r = subprocess.run(argv_for(setup, "direct", [py, "-c", METRICS, setup.metrics_port]), capture_output=True,
                       text=True, timeout=30)
    assert r.stdout.startswith("answer HTTP/1."), f"directly: {r.stdout}{r.stderr}"
    for mode in ("root", "root-userns"):
        for addr in ("127.0.0.1", "127.0.0.2", "0.0.0.0", "::ffff:127.0.0.1", setup.topo.ins4):
            r = subprocess.run(argv_for(setup, mode, [py, "-c", METRICS, setup.metrics_port, addr]),
                               capture_output=True, text=True, timeout=30)
            assert r.stdout.strip() == "error 111", f"{mode}, {addr}: {r.stdout}{r.stderr}"


def test_leftovers_end_with_the_run(setup):
    """A daemonized child outlives its parent, but not the run: when the command ends, so does it.  The same
    script run directly leaves its sleeper behind (so the check can fail)."""
    # The subshell forks the sleeper and returns only once it has become `sleep` (its exec done, 5 s at most),
    # then says so: the check that follows cannot pass just because the sleeper had not started yet.
    script = ["sh", "-c", "(sleep 317 >/dev/null 2>&1 & s=$!; i=0;"
              " until [ \"$(cat /proc/$s/comm 2>/dev/null)\" = sleep ]; do"
              " i=$((i+1)); [ $i -le 500 ] || exit 1; sleep 0.01; done;"
              " echo sleeper-started); exit 0"]
    r = subprocess.run(setup.topo.nsexec(setup.topo.ins, script), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "sleeper-started" in r.stdout, (r.stdout, r.stderr)
    left = _find(["sleep", "317"])
    assert left, "directly, the sleeper should still run"
    for pid in left:
        os.kill(pid, 9)
    r = subprocess.run(argv_for(setup, "root", script), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "sleeper-started" in r.stdout, (r.stdout, r.stderr)
    assert not _find(["sleep", "317"]), "a process the run left behind outlived it"


def _cmdline(p):
    try:
        return (p / "cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return []


def test_root_switching_users_still_works(setup):
    """A program that starts as root and drops to another user (as nginx's workers do) keeps working, and
    is that user on the host's files."""
    d = setup.topo.tmpdir / "www-dir"
    d.mkdir()
    os.chmod(d, 0o777)
    out = d / "as-www"
    r = subprocess.run(argv_for(setup, "root", ["setpriv", "--reuid=33", "--regid=33", "--clear-groups", "sh", "-c",
                                                f"id -u; touch {out}"]), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "33", f"{r.stdout}{r.stderr}"
    assert os.stat(out).st_uid == 33, "the file a uid-33 program made is not uid 33's on the host"


def test_map_root_to(setup):
    """--map-root-to: root inside, owning nothing outside: a root-only host file is not writable to it (as it is
    to root mapped to root), and what it makes belongs to the mapped uid on the host."""
    d = setup.topo.tmpdir / "mapped"
    d.mkdir()
    os.chmod(d, 0o777)
    root_only = d / "root-only"
    root_only.write_text("x")
    os.chmod(root_only, 0o644)
    script = f"id -u; touch {d}/made; echo y >> {root_only} && echo wrote"
    r = subprocess.run(argv_for(setup, "root-mapped", ["sh", "-c", script]), capture_output=True, text=True,
                       timeout=30)
    assert r.stdout.split()[:1] == ["0"] and "wrote" not in r.stdout, r.stdout + r.stderr
    assert os.stat(d / "made").st_uid == ROOT_MAP, "the file root made inside is not the mapped uid's outside"
    r = subprocess.run(argv_for(setup, "root", ["sh", "-c", script]), capture_output=True, text=True, timeout=30)
    assert "wrote" in r.stdout, f"root mapped to root should write it (the check can fail): {r.stdout}{r.stderr}"


def test_no_new_privs(setup):
    r = subprocess.run(argv_for(setup, "root", ["grep", "NoNewPrivs", "/proc/self/status"], ("--no-new-privs",)),
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["NoNewPrivs:", "1"], r.stdout + r.stderr
    r = subprocess.run(argv_for(setup, "root", ["grep", "NoNewPrivs", "/proc/self/status"]),
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["NoNewPrivs:", "0"], r.stdout + r.stderr


HOLD = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
print("connected", flush=True)
try:
    print("recv", s.recv(10), flush=True)
except OSError as e:
    print("recv", e.errno, flush=True)
"""


def test_mwctl_from_the_host_still_sees_and_controls(setup):
    """From the host, mwctl sees a contained program's flow under its host pid, and kill resets it: the
    program's blocked recv gets ECONNRESET."""
    import json
    topo, mwctl = setup.topo, BUILD / "mwctl"
    port = topo.port()
    srv = topo.popen(topo.ins, ["/usr/bin/python3", "-c", "import socket, time\n"
                                "l = socket.create_server(('127.0.0.1', %d))\nc = l.accept()\ntime.sleep(60)" % port])
    topo.wait_port(topo.ins, port, proc=srv)  # before the program connects: it must not find nothing there
    prog = subprocess.Popen(argv_for(setup, "root", ["/usr/bin/python3", "-c", HOLD, port]), stdout=subprocess.PIPE,
                            text=True)
    try:
        assert prog.stdout.readline().strip() == "connected"
        deadline, mine = time.monotonic() + 10, []
        while not mine and time.monotonic() < deadline:
            r = subprocess.run(topo.nsexec(topo.ins, [mwctl, "-r", setup.ins.registry, "flows", "--json"]),
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            mine = [f for f in json.loads(r.stdout) if f.get("id.resp_p") == port]
            time.sleep(0.05)
        assert mine, "mwctl does not see the contained program's flow"
        assert mine[0]["proc.pid"] in _descendants(prog.pid), mine[0]
        r = subprocess.run(topo.nsexec(topo.ins, [mwctl, "-r", setup.ins.registry, "kill", mine[0]["uid"]]),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert prog.stdout.readline().strip() == "recv 104", "the kill did not reach the program (ECONNRESET)"
    finally:
        prog.kill()
        prog.wait(timeout=10)
        topo.stop(srv)


def test_setuid_root_helper(setup):
    """A set-user-ID-root copy of the attacker, run as nobody: directly it becomes root and joins mwinsd's
    network namespace; under mwrun it is root in the command's user namespace at most, and the walls hold.
    The copy lives on a tmpfs mounted here (without nosuid, whatever /tmp's mount options are)."""
    tmp_path = setup.topo.tmpdir / "setuid"   # 0755 all the way: nobody must reach it
    tmp_path.mkdir()
    d = tmp_path / "suid"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "mwtest-suid", str(d)], check=True, timeout=10)
    try:
        exe = d / "escape-suid"
        shutil.copy2(setup.escape, exe)
        os.chown(exe, 0, 0)
        os.chmod(exe, 0o4755)
        os.chmod(tmp_path, 0o755)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
        argv = [str(exe), "setns", setup.topo.world4, str(setup.world_port), f"/run/netns/{setup.topo.ins}"]
        r = subprocess.run(setup.topo.nsexec(setup.topo.ins, nobody + argv), capture_output=True, text=True,
                           timeout=30)
        assert "setns reached" in r.stdout, f"directly, the setuid helper should get out: {r.stdout}{r.stderr}"
        for mode in MODES:
            # as root, mwrun maps every uid and the helper starts as nobody inside; with --userns only the
            # caller's uid (root) is mapped, and as nobody mwrun's command is nobody already
            inner = nobody + argv if mode == "root" else argv
            r = subprocess.run(argv_for(setup, mode, inner), capture_output=True, text=True, timeout=30)
            assert r.stdout.strip() == "setns blocked EPERM", f"{mode}: {r.stdout}{r.stderr}"
        # Inside, the set-ID bit makes it root of the command's user namespace (a root-only file of the host
        # is writable to it); with --no-new-privs it gives nothing: it stays nobody.
        root_only = tmp_path / "root-only"
        root_only.write_text("x")
        os.chmod(root_only, 0o644)
        argv = [str(exe), "write", setup.topo.world4, str(setup.world_port), str(root_only)]
        r = subprocess.run(argv_for(setup, "root", nobody + argv), capture_output=True, text=True, timeout=30)
        assert r.stdout.strip() == "write done writable", r.stdout + r.stderr
        r = subprocess.run(argv_for(setup, "root", nobody + argv, ("--no-new-privs",)), capture_output=True,
                           text=True, timeout=30)
        assert r.stdout.strip() == "write blocked EACCES", r.stdout + r.stderr
    finally:
        subprocess.run(["umount", str(d)], timeout=10)


def test_deny_unix_dgram(setup):
    """Datagram unix sockets work by default (programs use socketpairs for their own IPC); --deny-unix-dgram
    refuses them."""
    code = ("import socket\ntry:\n    socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM); print('ok')\n"
            "except OSError as e:\n    print('error', e.errno)\n")
    r = subprocess.run(argv_for(setup, "root", ["/usr/bin/python3", "-c", code]), capture_output=True, text=True,
                       timeout=30)
    assert r.stdout.strip() == "ok", r.stdout + r.stderr
    r = subprocess.run(argv_for(setup, "root", ["/usr/bin/python3", "-c", code], ("--deny-unix-dgram",)),
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "error 13", r.stdout + r.stderr
    # SOCK_RAW is a datagram socket too, for AF_UNIX
    raw = code.replace("socket.SOCK_DGRAM", "socket.SOCK_RAW")
    r = subprocess.run(setup.topo.nsexec(setup.topo.ins, ["/usr/bin/python3", "-c", raw]), capture_output=True,
                       text=True, timeout=30)
    assert r.stdout.strip() == "ok", "directly, AF_UNIX SOCK_RAW makes a datagram socket: " + r.stdout + r.stderr
    r = subprocess.run(argv_for(setup, "root", ["/usr/bin/python3", "-c", raw], ("--deny-unix-dgram",)),
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "error 13", r.stdout + r.stderr


def test_families_no_namespace_bounds(setup):
    """AF_VSOCK reaches the hypervisor whatever the network namespace: the command can't make one (the answer
    of a kernel without vsock).  Directly it must be made, or the check could not fail: a kernel without vsock
    skips it."""
    code = ("import socket\ntry:\n    socket.socket(40, socket.SOCK_STREAM); print('made')\n"
            "except OSError as e:\n    print('error', e.errno)\n")
    r = subprocess.run(setup.topo.nsexec(setup.topo.ins, ["/usr/bin/python3", "-c", code]), capture_output=True,
                       text=True, timeout=30)
    if r.stdout.strip() != "made":
        pytest.skip(f"this kernel makes no AF_VSOCK socket ({r.stdout.strip()}): nothing to refuse")
    for mode in MODES:
        r = subprocess.run(argv_for(setup, mode, ["/usr/bin/python3", "-c", code]), capture_output=True,
                           text=True, timeout=30)
        assert r.stdout.strip() == "error 97", f"{mode}: {r.stdout}{r.stderr}"


def test_working_directory_under_a_read_only_bind(setup):
    """Started with its working directory in the registry (or mwrun's own directory), the command must not
    write through it: the directory it had before the binds still points into the writable mount."""
    reg = setup.ins.registry
    r = subprocess.run(setup.topo.nsexec(setup.topo.ins, ["sh", "-c", "touch ./mw-probe && rm ./mw-probe && echo wrote"]),
                       capture_output=True, text=True, timeout=30, cwd=reg)
    assert "wrote" in r.stdout, f"directly, root writes there: {r.stdout}{r.stderr}"
    for mode in ("root", "root-userns"):
        r = subprocess.run(argv_for(setup, mode, ["sh", "-c", "touch ./mw-probe && echo wrote; pwd"]),
                           capture_output=True, text=True, timeout=30, cwd=reg)
        assert "wrote" not in r.stdout and "Read-only file system" in r.stderr, f"{mode}: {r.stdout}{r.stderr}"
        assert r.stdout.strip() == str(reg), f"{mode}: it should still start in {reg}: {r.stdout}"
    assert not (reg / "mw-probe").exists()


def test_gate_connects_with_the_callers_permissions(setup):
    """A root-only socket (0600, root's): root inside reaches it with --allow-unix; a command that dropped to
    nobody does not, as nobody would not outside (the gate walks and connects with the caller's ids)."""
    srv, path = unix_listener(setup.topo, "rootsock", 0o600)
    try:
        args = [str(path), "--allow-unix", str(path)]
        out = lambda mode, nobody: subprocess.run(  # noqa: E731
            argv_for(setup, mode, (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if nobody
                                   else []) + [setup.escape if mode == "root" else setup.nb_escape, "unix",
                                               setup.topo.world4, setup.world_port, str(path)], args[1:]),
            capture_output=True, text=True, timeout=30).stdout.strip()
        assert out("root", False).startswith("unix done"), "root inside, allowed: " + out("root", False)
        assert out("root", True) == "unix blocked EACCES", "nobody inside: " + out("root", True)
        r = subprocess.run(setup.topo.nsexec(setup.topo.ins, ["setpriv", "--reuid=65534", "--regid=65534",
                                                               "--clear-groups", setup.nb_escape, "unix", "x", "0",
                                                               str(path)]), capture_output=True, text=True,
                           timeout=30)
        assert r.stdout.strip() == "unix blocked EACCES", "nobody outside mwrun: " + r.stdout
    finally:
        srv.close()


def test_killing_mwrun_ends_the_run(setup, tmp_path):
    """mwrun killed with SIGKILL: its command, whatever the command left behind, and its embedded mwinsd end
    too (nothing of the run keeps a network)."""
    reg = tmp_path / "reg"
    reg.mkdir()
    os.chmod(reg, 0o755)
    p = subprocess.Popen(setup.topo.nsexec(setup.topo.ins, [BUILD / "mwrun", "-r", reg, "--no-dns", "--", "sh", "-c",
                                                            "sleep 302 & sleep 303"]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not _find(["sleep", "303"]):
        time.sleep(0.05)
    assert _find(["sleep", "303"]), "the command did not start"
    ins_pids = [c for c in _descendants(p.pid) if os.path.basename((_cmdline(Path(f"/proc/{c}")) or [""])[0])
                == "mwinsd"]
    kids = [_cmdline(Path(f"/proc/{c}")) for c in _descendants(p.pid)]
    assert ins_pids, f"no embedded mwinsd among mwrun's children: {kids}"
    os.kill(p.pid, 9)  # ip netns exec execs: this is mwrun
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_find(["sleep", "302"]) or _find(["sleep", "303"]) or
                                           any(Path(f"/proc/{i}").exists() for i in ins_pids)):
        time.sleep(0.05)
    left = _find(["sleep", "302"]) + _find(["sleep", "303"]) + [i for i in ins_pids if Path(f"/proc/{i}").exists()]
    assert not left, f"left running after mwrun was killed: {left}"


def _find(argv):
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == argv]


VETH = r"""
# A namespace of its own, then an interface pair with one end in mwinsd's namespace (by its pinned name).
unshare -n sh -c 'ip link add mwesc0 type veth peer name mwesc1 netns "$0" && echo created' "$NS" 2>&1
"""


def test_unshare_then_interfaces(setup):
    """`unshare -n`, then an interface pair with one end in mwinsd's namespace: directly root makes it (a wire
    from a namespace of its own into the one with the network); under mwrun it can't.  (Moving mwinsd's own
    veth is not tried directly: it would take the test's topology apart.)"""
    ns = setup.topo.ins
    env = dict(os.environ, NS=ns)
    try:
        r = subprocess.run(setup.topo.nsexec(ns, ["sh", "-c", VETH]), capture_output=True, text=True, timeout=30,
                           env=env)
        assert "created" in r.stdout, f"directly, root should make the pair: {r.stdout}{r.stderr}"
    finally:
        setup.topo.run(ns, ["ip", "link", "del", "mwesc1"], timeout=10)
    for mode in MODES:
        r = subprocess.run(argv_for(setup, mode, ["env", f"NS={ns}", "sh", "-c", VETH]), capture_output=True,
                           text=True, timeout=30)
        assert "created" not in r.stdout, f"{mode}: {r.stdout}{r.stderr}"
        assert "Operation not permitted" in r.stdout or "Permission denied" in r.stdout, f"{mode}: {r.stdout}"
        links = setup.topo.run(ns, ["ip", "-o", "link"], timeout=10).stdout
        assert "mwesc1" not in links and "veth0" in links, f"{mode}: mwinsd's namespace changed:\n{links}"
