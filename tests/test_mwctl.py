"""mwctl status against hand-made registries.

Each test writes a fake registry under tmp_path (the files mwinsd would
publish, see docs/interfaces.md), runs BUILD/mwctl on it, and checks the
columns and the JSON. No mwinsd and no namespaces are involved, so these tests
need neither root nor a network: a "live" instance uses this test process's
pid, a dead one a pid that does not exist.

The registry is untrusted input to mwctl, so many tests feed it garbage and
require an error message in the output, exit status 0, and no crash.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import BUILD, san_check

MWCTL = BUILD / "mwctl"

COLUMNS = ["ID", "PID", "ALIVE", "HEARTBEAT", "VERSION", "SOCKETS", "BYTES_IN", "BYTES_OUT", "SOCK"]

GOOD_STATS = "sockets 3\nbytes_in 1024\nbytes_out 2048\nclients 2\n"


# heartbeat path -> (the age make_ins gave it, the mtime it was last set to): see touch_heartbeats()
_HEARTBEATS = {}


@pytest.fixture(autouse=True)
def _built():
    if not MWCTL.exists():
        pytest.fail(f"{MWCTL} does not exist: build first (make)")
    _HEARTBEATS.clear()


def dead_pid():
    """A pid with no process behind it."""
    for pid in range(4194303, 4000000, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
    pytest.skip("no free pid found")


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)


def make_ins(reg, ins_id, pid=None, hb_age=0.0, **files):
    """Publish reg/ins/<ins_id>/ with valid values; keyword arguments replace a
    file's content (None removes the file)."""
    d = reg / "ins" / ins_id
    values = {
        "pid": f"{os.getpid() if pid is None else pid}\n",
        "sock": f"/run/mwcomms/{ins_id}.sock\n",
        "version": "1\n",
        "ip_addrs": "10.0.0.1/24\nfd00::0001/64\n",
        "heartbeat": "7\n",
        "network_stats": GOOD_STATS,
        "listening_ports": "tcp 0.0.0.0:8080\ntcp [::]:8080\n",
    }
    values.update(files)
    for name, data in values.items():
        if data is not None:
            write(d / name, data)
    if values["heartbeat"] is not None and (d / "heartbeat").is_file():
        _HEARTBEATS[d / "heartbeat"] = (hb_age, None)
        touch_heartbeats()
    return d


def touch_heartbeats():
    """Give each heartbeat make_ins wrote its age again, now: mwctl() calls this right before it runs mwctl, so
    that the age mwctl sees does not include the time the test took to get there (mwctl takes an instance
    whose heartbeat is older than 2.5 s for dead, and a sanitized mwctl can take a while to start).  A
    heartbeat the test has changed since is left as it is."""
    for path, (age, last) in list(_HEARTBEATS.items()):
        try:
            if last is not None and abs(path.stat().st_mtime - last) > 0.001:
                del _HEARTBEATS[path]
                continue
            t = time.time() - age
            os.utime(path, (t, t))
            _HEARTBEATS[path] = (age, path.stat().st_mtime)
        except OSError:
            del _HEARTBEATS[path]


def make_client(reg, pid, ins_id, exe="/opt/fake/bin/curl", sockets=1):
    d = reg / "clients" / str(pid)
    write(d / "ins", f"{ins_id}\n")
    write(d / "exe", f"{exe}\n")
    write(d / "sockets", f"{sockets}\n")
    return d


def mwctl(*args, env=None, timeout=20):
    touch_heartbeats()
    r = subprocess.run([str(MWCTL)] + [str(a) for a in args], capture_output=True,
                       timeout=timeout, env=env)
    # Output is for terminals: it must be UTF-8 with no control characters but '\n'.
    out, err = r.stdout.decode("utf-8"), r.stderr.decode("utf-8", errors="replace")
    san_check(err, "mwctl")
    assert r.returncode >= 0, f"mwctl died of signal {-r.returncode}\n{err}"
    assert not any(ord(c) < 0x20 and c != "\n" for c in out), repr(out)
    return r.returncode, out, err


def status(reg, *extra):
    return mwctl("-r", reg, "status", *extra)


def status_json(reg):
    rc, out, err = status(reg, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["registry"] == str(reg)
    return doc


def instance(doc, ins_id):
    found = [i for i in doc["instances"] if i["id"] == ins_id]
    assert len(found) == 1, doc
    return found[0]


def rows(out):
    """{id: (line, fields)} for the instance rows of the table."""
    lines = out.splitlines()
    assert lines[0].split() == COLUMNS
    return {line.split()[0]: (line, line.split()) for line in lines[1:] if line and line[0] != " "}


def block(out, ins_id):
    """The indented detail lines under one instance's row."""
    lines, res, inside = out.splitlines(), [], False
    for line in lines[1:]:
        if line and line[0] != " ":
            inside = line.split()[0] == ins_id
        elif inside:
            res.append(line.strip())
    return res


# --------------------------------------------------------------------------
# the registry as a whole


def test_empty_registry(tmp_path):
    rc, out, err = status(tmp_path)
    assert (rc, out, err) == (0, "no INS running\n", "")
    (tmp_path / "ins").mkdir()
    (tmp_path / "clients").mkdir()
    rc, out, err = status(tmp_path)
    assert (rc, out, err) == (0, "no INS running\n", "")
    doc = status_json(tmp_path)
    assert doc["instances"] == [] and doc["errors"] == {}


def test_missing_registry(tmp_path):
    reg = tmp_path / "nope"
    for extra in ([], ["--json"]):
        rc, out, err = status(reg, *extra)
        assert rc == 1 and out == ""
        assert str(reg) in err and "No such file or directory" in err


def test_unreadable_registry(tmp_path):
    write(tmp_path / "ins", "not a directory\n")
    rc, out, err = status(tmp_path)
    assert rc == 1 and out == ""
    assert "cannot read registry" in err and "ins/" in err


def test_registry_from_environment(tmp_path):
    make_ins(tmp_path, "ins-env")
    env = dict(os.environ, MWCOMMS_REGISTRY=str(tmp_path))
    rc, out, err = mwctl("status", env=env)
    assert rc == 0, err
    assert "ins-env" in rows(out)
    # -r wins over the environment
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = mwctl("-r", empty, "status", env=env)
    assert (rc, out) == (0, "no INS running\n")


# --------------------------------------------------------------------------
# columns and JSON for healthy instances


def test_columns(tmp_path):
    make_ins(tmp_path, "ins-a", hb_age=0.5)
    make_client(tmp_path, 5678, "ins-a", "/opt/fake/bin/curl", 2)
    make_client(tmp_path, 123, "ins-a", "/opt/fake/bin/wget", 1)
    rc, out, err = status(tmp_path)
    assert rc == 0 and err == ""

    header = out.splitlines()[0]
    line, f = rows(out)["ins-a"]
    assert f[1] == str(os.getpid())
    assert f[2] == "yes"
    assert f[3].endswith("s") and 0.0 <= float(f[3][:-1]) < 2.5
    assert f[4:8] == ["1", "3", "1024", "2048"]
    assert f[8] == "/run/mwcomms/ins-a.sock"
    # stable columns: every value starts under its heading
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    for name, pos, value in zip(COLUMNS, starts, f):
        assert line[pos:].startswith(value + " ") or line[pos:] == value, (name, header, line)

    details = block(out, "ins-a")
    assert "ip_addrs: 10.0.0.1/24 fd00::1/64" in details
    assert "listening_ports: tcp 0.0.0.0:8080 tcp [::]:8080" in details
    assert "clients: 2" in details
    i = details.index("PID      SOCKETS  EXE")
    # clients sorted by pid
    assert details[i + 1].split() == ["123", "1", "/opt/fake/bin/wget"]
    assert details[i + 2].split() == ["5678", "2", "/opt/fake/bin/curl"]
    assert not any(d.startswith(("error:", "dead:")) for d in details)


def test_json(tmp_path):
    make_ins(tmp_path, "ins-a", hb_age=0.5)
    make_client(tmp_path, 5678, "ins-a", "/opt/fake/bin/curl", 2)
    doc = status_json(tmp_path)
    assert doc["errors"] == {}
    ins = instance(doc, "ins-a")
    age = ins.pop("heartbeat_age_s")
    assert 0.0 <= age < 2.5
    assert ins == {
        "id": "ins-a",
        "pid": os.getpid(),
        "alive": True,
        "dead_reason": None,
        "dead_for_s": None,
        "sock": "/run/mwcomms/ins-a.sock",
        "version": 1,
        "ip_addrs": ["10.0.0.1/24", "fd00::1/64"],
        "network_stats": {"sockets": 3, "bytes_in": 1024, "bytes_out": 2048, "clients": 2},
        "listening_ports": [
            {"proto": "tcp", "address": "0.0.0.0", "port": 8080},
            {"proto": "tcp", "address": "::", "port": 8080},
        ],
        "clients": [{"pid": 5678, "exe": "/opt/fake/bin/curl", "sockets": 2, "errors": {}}],
        "errors": {},
    }


def test_instances_sorted_and_separate(tmp_path):
    for name in ("ins-c", "ins-a", "ins-b"):
        make_ins(tmp_path, name)
    make_client(tmp_path, 10, "ins-b")
    make_client(tmp_path, 11, "ins-c")
    doc = status_json(tmp_path)
    assert [i["id"] for i in doc["instances"]] == ["ins-a", "ins-b", "ins-c"]
    assert [[c["pid"] for c in i["clients"]] for i in doc["instances"]] == [[], [10], [11]]
    rc, out, _ = status(tmp_path)
    assert list(rows(out)) == ["ins-a", "ins-b", "ins-c"]


def test_empty_lists(tmp_path):
    make_ins(tmp_path, "ins-a", ip_addrs="", listening_ports="")
    ins = instance(status_json(tmp_path), "ins-a")
    assert ins["ip_addrs"] == [] and ins["listening_ports"] == [] and ins["errors"] == {}
    details = block(status(tmp_path)[1], "ins-a")
    assert "ip_addrs: none" in details and "listening_ports: none" in details


# --------------------------------------------------------------------------
# dead instances


def test_dead_by_stale_heartbeat(tmp_path):
    # The process exists (it is us), but the heartbeat missed two beats.
    make_ins(tmp_path, "ins-stale", hb_age=10)
    make_ins(tmp_path, "ins-fresh", hb_age=0.2)
    ins = instance(status_json(tmp_path), "ins-stale")
    assert ins["alive"] is False
    assert ins["pid"] == os.getpid()
    assert 9.5 <= ins["heartbeat_age_s"] < 60
    assert "heartbeat" in ins["dead_reason"]
    assert instance(status_json(tmp_path), "ins-fresh")["alive"] is True

    rc, out, _ = status(tmp_path)
    assert rc == 0
    r = rows(out)
    assert r["ins-stale"][1][2] == "no" and r["ins-fresh"][1][2] == "yes"
    assert any(d.startswith("dead: heartbeat") for d in block(out, "ins-stale"))


def test_dead_process(tmp_path):
    pid = dead_pid()
    make_ins(tmp_path, "ins-gone", pid=pid, hb_age=0)
    ins = instance(status_json(tmp_path), "ins-gone")
    assert ins["alive"] is False and ins["pid"] == pid
    assert str(pid) in ins["dead_reason"]
    rc, out, _ = status(tmp_path)
    assert rows(out)["ins-gone"][1][2] == "no"


def test_heartbeat_in_the_future(tmp_path):
    d = make_ins(tmp_path, "ins-a")
    t = time.time() + 3600
    os.utime(d / "heartbeat", (t, t))
    ins = instance(status_json(tmp_path), "ins-a")
    assert ins["alive"] is False and ins["heartbeat_age_s"] is None


# --------------------------------------------------------------------------
# garbage in the registry: an error in the output, never a crash


@pytest.mark.parametrize("stats", [
    "sockets 3\nbytes_in lots\nbytes_out 1\n",
    "sockets 3\nbytes_in 1\n",                                   # bytes_out missing
    "sockets 3\nsockets 4\nbytes_in 1\nbytes_out 1\n",           # duplicate
    "sockets -3\nbytes_in 1\nbytes_out 1\n",
    "sockets 3\nbytes_in 99999999999999999999999\nbytes_out 1\n",
    "sockets\t3\nbytes_in 1\nbytes_out 1\n",
    "\n\n\n",
    "",
    b"\xff\xfe\x00garbage",
    b"sockets 3\x1b[2J\nbytes_in 1\nbytes_out 1\n",
    "x" * 100000,
], ids=lambda s: repr(s)[:30])
def test_garbage_network_stats(tmp_path, stats):
    make_ins(tmp_path, "ins-a", network_stats=stats)
    ins = instance(status_json(tmp_path), "ins-a")
    assert ins["network_stats"] is None
    assert set(ins["errors"]) == {"network_stats"}, ins["errors"]
    assert ins["errors"]["network_stats"]
    # the rest of the instance is still read and judged
    assert ins["alive"] is True and ins["version"] == 1

    rc, out, err = status(tmp_path)
    assert rc == 0 and err == ""
    assert rows(out)["ins-a"][1][5:8] == ["-", "-", "-"]
    assert any(d.startswith("error: network_stats: ") for d in block(out, "ins-a"))


def test_unknown_stats_counter_is_skipped(tmp_path):
    make_ins(tmp_path, "ins-a", network_stats="sockets 1\nbytes_in 2\nbytes_out 3\nfuture_thing 9\n")
    ins = instance(status_json(tmp_path), "ins-a")
    assert ins["network_stats"] == {"sockets": 1, "bytes_in": 2, "bytes_out": 3}
    assert ins["errors"] == {}


@pytest.mark.parametrize("pid", ["0", "-1", "1x", " 12", "99999999999", "", "4194305"])
def test_garbage_pid(tmp_path, pid):
    # pid 0 or -1 must never reach kill(): that would probe whole process groups.
    make_ins(tmp_path, "ins-a", pid=pid)
    ins = instance(status_json(tmp_path), "ins-a")
    assert ins["pid"] is None and ins["alive"] is False
    assert "pid" in ins["errors"]


def test_garbage_everywhere(tmp_path):
    d = make_ins(tmp_path, "ins-bad",
                 sock="\x1b]0;pwned\x07/run/x\n",            # terminal escape
                 version="1\n2\n",                           # two lines
                 ip_addrs="300.1.1.1/24\n",
                 listening_ports="tcp 0.0.0.0:99999\n",
                 heartbeat=None)
    os.mkfifo(d / "heartbeat")                               # must not hang the reader
    write(d / "pid", b"12\x0034\n")
    make_ins(tmp_path, "ins-link", sock=None, version="9" * 5000)
    os.symlink("/etc/hostname", tmp_path / "ins" / "ins-link" / "sock")

    doc = status_json(tmp_path)
    bad = instance(doc, "ins-bad")
    assert set(bad["errors"]) == {"pid", "sock", "version", "ip_addrs", "listening_ports", "heartbeat"}
    for key in ("pid", "sock", "version", "ip_addrs", "listening_ports", "heartbeat_age_s"):
        assert bad[key] is None, key
    assert bad["alive"] is False
    assert bad["network_stats"]["sockets"] == 3            # the good file is still read

    link = instance(doc, "ins-link")
    assert "symbolic link" in link["errors"]["sock"]
    assert "larger than" in link["errors"]["version"]

    rc, out, err = status(tmp_path)
    assert rc == 0 and err == ""
    assert "pwned" not in out
    errors = [d for d in block(out, "ins-bad") if d.startswith("error: ")]
    assert len(errors) == 6


def test_bad_entries(tmp_path):
    make_ins(tmp_path, "ins-a")
    (tmp_path / "ins" / "bad name\x1b").mkdir()
    write(tmp_path / "ins" / "plainfile", "x")
    (tmp_path / "ins" / ".ins-b.tmp").mkdir()                # a writer's work in progress
    make_client(tmp_path, 77, "ins-gone")                    # instance not in the registry
    make_client(tmp_path, 78, "../../etc")                   # not an instance id
    (tmp_path / "clients" / "0123").mkdir()
    (tmp_path / "clients" / "abc").mkdir()
    cd = make_client(tmp_path, 79, "ins-a")
    write(cd / "sockets", "many\n")
    write(cd / "exe", b"/bin/\xc0\xaf\n")                    # overlong UTF-8

    doc = status_json(tmp_path)
    assert [i["id"] for i in doc["instances"]] == ["ins-a"]
    top = doc["errors"]
    assert "ins-gone" in top["clients/77"]
    assert "clients/78/ins" in top
    assert "clients/0123" in top and "clients/abc" in top
    assert "ins/plainfile" in top
    assert any(k.startswith("ins/bad\\x20name") for k in top), top
    assert not any(".ins-b.tmp" in k for k in top)
    (client,) = instance(doc, "ins-a")["clients"]
    assert client["pid"] == 79 and client["exe"] is None and client["sockets"] is None
    assert set(client["errors"]) == {"exe", "sockets"}

    rc, out, err = status(tmp_path)
    assert rc == 0 and err == ""
    assert "error: clients/77: attached to ins-gone, which is not in the registry" in out


# --------------------------------------------------------------------------
# usage


def test_usage(tmp_path):
    rc, out, err = mwctl()
    assert rc == 1 and out == "" and "Usage:" in err
    rc, out, err = mwctl("-r", tmp_path, "frobnicate")
    assert rc == 1 and "frobnicate" in err
    rc, out, err = mwctl("-r", tmp_path, "status", "--bogus")
    assert rc == 1 and out == "" and "--bogus" in err
    rc, out, err = mwctl("-r")
    assert rc == 1 and "needs an argument" in err
    rc, out, err = mwctl("help")
    assert rc == 0 and err == "" and "status" in out and "Usage:" in out
    rc, out, err = mwctl("status", "--help")
    assert rc == 0 and "--json" in out
