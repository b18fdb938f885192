"""make install into a DESTDIR, and mwinsd run from the unit it installed.

test_install_files_and_modes: `make install DESTDIR=...` puts exactly the expected files at the expected modes
(nothing set-ID, nothing writable but by root), the unit's ExecStart names the installed mwinsd, an edited
policy survives a reinstall and an uninstall, and `make uninstall` removes the rest.

test_unit_under_stand_in: the installed unit's [Service] is read and run as systemd would run it (its
ExecStart argv, LimitNOFILE, the notify socket and the watchdog), with DESTDIR in front of the installed
paths and the registry in a directory of the test's own; the test plays the service manager as
test_systemd.py does.  The installed mwrun, from the DESTDIR, finds the installed shim, and its command
reaches a server on the host through that mwinsd; the installed mwctl sees it; ExecReload re-reads the
policy as the unit's user; SIGTERM stops it cleanly.
"""

import os
import pwd
import resource
import shlex
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, PY, san_check

PREFIX = "/usr"  # the same layout relative to BINDIR as the default build's: make install rebuilds nothing
PROGS = ["mwinsd", "libmwshim.so", "mwrun", "mwctl"]

EXPECTED = {
    # path under DESTDIR: mode
    "usr/bin/mwrun": 0o755,
    "usr/sbin/mwinsd": 0o755,
    "usr/sbin/mwctl": 0o755,
    "usr/lib/mwcomms/libmwshim.so": 0o644,
    "usr/share/man/man1/mwrun.1": 0o644,
    "usr/share/man/man5/mwcomms-policy.5": 0o644,
    "usr/share/man/man8/mwctl.8": 0o644,
    "usr/share/man/man8/mwinsd.8": 0o644,
    "usr/share/bash-completion/completions/mwctl": 0o644,
    "usr/share/bash-completion/completions/mwrun": 0o644,
    "usr/lib/systemd/system/mwinsd.service": 0o644,
    "etc/mwcomms/policy": 0o644,
}


def make(destdir, *targets):
    """make TARGETS with the test's layout, never rebuilding the programs (-o): tests/run built them, and
    the tree may hold someone's half-made edit."""
    olds = [a for p in PROGS for a in ("-o", str(BUILD / p))]
    argv = ["make", "-s", "-C", str(ROOT), f"B={BUILD}", *olds, f"PREFIX={PREFIX}", f"DESTDIR={destdir}",
            *targets]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def tree(root):
    """{relative path: mode} of every file and symlink under root (directories apart)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def dirs(root):
    return {str(Path(d).relative_to(root)): stat.S_IMODE(os.stat(d).st_mode) for d, _, _ in os.walk(root)}


def test_install_files_and_modes(tmp_path):
    dest = tmp_path / "dest"
    make(dest, "install")
    got = tree(dest)
    assert got == EXPECTED, f"installed {sorted(got.items())}"
    for d, mode in dirs(dest).items():
        assert mode == 0o755, f"directory {d} is {oct(mode)}"
    for f in got:
        st = os.lstat(dest / f)
        assert st.st_uid == 0 and not stat.S_ISLNK(st.st_mode), f
    for f in ("usr/bin/mwrun", "usr/sbin/mwinsd", "usr/sbin/mwctl", "usr/lib/mwcomms/libmwshim.so"):
        assert (dest / f).read_bytes()[:4] == b"\x7fELF", f

    unit = (dest / "usr/lib/systemd/system/mwinsd.service").read_text()
    execstart = next(l for l in unit.splitlines() if l.startswith("ExecStart="))
    argv = shlex.split(execstart[len("ExecStart="):])
    assert argv[0] == "/usr/sbin/mwinsd", execstart
    assert argv[argv.index("--policy") + 1] == "/etc/mwcomms/policy", execstart
    assert "/usr/local" not in unit

    # The policy is the administrator's once installed: neither a reinstall nor an uninstall touches an
    # edited one.  Everything else goes.
    policy = dest / "etc/mwcomms/policy"
    policy.write_text(policy.read_text() + "deny name=edited rport=23\n")
    make(dest, "install")
    assert "name=edited" in policy.read_text(), "make install overwrote an edited policy"
    make(dest, "uninstall")
    assert tree(dest) == {"etc/mwcomms/policy": 0o644}, sorted(tree(dest))

    # An unedited policy is removed with the rest, and the directories install made for mwcomms alone.
    policy.unlink()
    make(dest, "install")
    make(dest, "uninstall")
    assert tree(dest) == {}, sorted(tree(dest))
    assert not (dest / "etc/mwcomms").exists() and not (dest / "usr/lib/mwcomms").exists()


def read_unit(path):
    """The [Service] section's keys: {key: value} (one value each, as this unit has)."""
    svc, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            svc[k] = v
    return svc


def read_until(sock, want, timeout):
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode(errors="replace"))
        except socket.timeout:
            break
        if want in got[-1]:
            break
    return got


@pytest.fixture
def unit_user():
    """The unit's user, made as the package's postinst makes it if this machine lacks it."""
    try:
        pwd.getpwnam("mwcomms")
        yield "mwcomms"
        return
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", "mwcomms"], check=True)
    try:
        yield "mwcomms"
    finally:
        subprocess.run(["userdel", "mwcomms"], check=False)


def echo_server():
    """A TCP server on the host's loopback that answers each line with 'echo: LINE'."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                data = c.recv(1024)
                c.sendall(b"echo: " + data)

    threading.Thread(target=serve, daemon=True).start()
    return srv


def test_unit_under_stand_in(unit_user):
    # Under /tmp with 0755 directories (not pytest's 0700 tmp_path): the unit's user must reach the policy
    # again on a reload, as it reaches /etc/mwcomms/policy when installed.
    base = Path(tempfile.mkdtemp(prefix="mwcomms-install-"))
    base.chmod(0o755)
    dest = base / "dest"
    make(dest, "install")
    unit = dest / "usr/lib/systemd/system/mwinsd.service"
    svc = read_unit(unit)
    assert svc["Type"] == "notify" and svc["WatchdogSec"] == "5s", svc

    # ExecStart as systemd would run it, with DESTDIR in front of installed paths and the registry
    # (RuntimeDirectory=mwcomms, i.e. /run/mwcomms) in a directory of the test's own.
    reg = base / "run-mwcomms"
    reg.mkdir(mode=0o755)
    argv = []
    for a in shlex.split(svc["ExecStart"]):
        if a == "/run/mwcomms":
            a = str(reg)
        elif a.startswith("/") and (dest / a.lstrip("/")).exists():
            a = str(dest / a.lstrip("/"))
        argv.append(a)
    assert argv[0] == str(dest / "usr/sbin/mwinsd"), argv
    ins_id = argv[argv.index("--id") + 1]
    nofile = int(svc["LimitNOFILE"])

    def limits():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), min(nofile, hard)))

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(base / "notify.sock"))
    os.chmod(base / "notify.sock", 0o666)  # as systemd's: mwinsd says READY=1 once it runs as its user
    env = dict(os.environ, NOTIFY_SOCKET=str(base / "notify.sock"), WATCHDOG_USEC="5000000")
    env.pop("MWCOMMS_REGISTRY", None)
    proc = subprocess.Popen(argv, env=env, preexec_fn=limits, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    srv = echo_server()
    try:
        got = read_until(notify, "READY=1", 10)
        assert got and "READY=1" in got[-1], (got, proc.poll())
        entry = reg / "ins" / ins_id
        assert entry.stat().st_uid == pwd.getpwnam(unit_user).pw_uid, "mwinsd did not give its entry to its user"
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid_line = next(l for l in status.splitlines() if l.startswith("Uid:"))
        assert uid_line.split()[1] == str(pwd.getpwnam(unit_user).pw_uid), uid_line

        # The installed mwrun, from the DESTDIR: the installed shim, this INS, a server on the host.
        port = srv.getsockname()[1]
        client = ("import socket; s = socket.create_connection(('127.0.0.1', %d)); s.sendall(b'hi');"
                  "print(s.recv(100).decode())" % port)
        r = subprocess.run([dest / "usr/bin/mwrun", "-v", "-r", reg, "--no-dns", "--", PY, "-c", client],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "echo: hi", r
        assert str(dest / "usr/lib/mwcomms/libmwshim.so") in subprocess.run(
            [dest / "usr/bin/mwrun", "-r", reg, "--no-dns", "--", "sh", "-c", "echo $LD_PRELOAD"],
            capture_output=True, text=True, timeout=30).stdout

        st = subprocess.run([dest / "usr/sbin/mwctl", "-r", reg, "status", "--json"], capture_output=True,
                            text=True, timeout=30)
        assert st.returncode == 0 and f'"id": "{ins_id}"' in st.stdout and '"alive": true' in st.stdout, st

        # ExecReload (kill -HUP): the policy is read again by the unit's user.
        policy = Path(argv[argv.index("--policy") + 1])
        policy.write_text(policy.read_text() + "deny name=from-reload rport=9\n")
        assert svc["ExecReload"].split()[-2:] == ["-HUP", "$MAINPID"], svc["ExecReload"]
        proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        shown = ""
        while time.monotonic() < end and "from-reload" not in shown:
            time.sleep(0.1)
            shown = subprocess.run([dest / "usr/sbin/mwctl", "-r", reg, "policy", "-i", ins_id],
                                   capture_output=True, text=True, timeout=30).stdout
        assert "from-reload" in shown, shown

        proc.send_signal(signal.SIGTERM)
        got = read_until(notify, "STOPPING=1", 5)
        assert any("STOPPING=1" in m for m in got), got
        assert proc.wait(timeout=10) == 0
        # mwinsd removed its files; the directory, in the root-owned ins/, is ExecStopPost's to remove.
        assert entry.exists() and not list(entry.iterdir()), list(entry.iterdir())
        post = [a.replace("/run/mwcomms", str(reg)) for a in shlex.split(svc["ExecStopPost"])]
        assert post[:2] == ["/bin/rm", "-rf"] and post[2:] == [str(entry)], post
        subprocess.run(post, check=True)
        assert not entry.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        srv.close()
        subprocess.run(["rm", "-rf", str(base)], check=False)
    san_check(proc.stderr.read().decode(errors="replace"), "mwinsd")
