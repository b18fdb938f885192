"""The registry keeps itself tidy: what a killed mwinsd leaves is removed by the next one to start.

An mwinsd killed with -9 cannot remove its entry (ins/ID) or its clients' (clients/PID): `mwctl status` lists it
as dead, and says since when.  The next mwinsd to start in that registry removes it, with the clients that were
attached to it, and keeps every entry that may still be alive: one that listens (even stopped with SIGSTOP),
one whose pid is a live mwinsd, one being made right now.  mwinsd runs in the test's own namespace here: no
topology is needed, the registry is the test's.
"""

import json
import os
import signal
import subprocess
import time

from conftest import BUILD, san_check


def start_ins(reg, ins_id):
    r, w = os.pipe()
    proc = subprocess.Popen([BUILD / "mwinsd", "-r", reg, "-i", ins_id, "-v", "--ready-fd", str(w)],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    with os.fdopen(r) as f:
        assert f.readline() == "ready\n", f"mwinsd {ins_id} did not start"
    return proc


def status(reg):
    r = subprocess.run([BUILD / "mwctl", "-r", reg, "status", "--json"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return {i["id"]: i for i in json.loads(r.stdout)["instances"]}


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=10)
    return proc.stderr.read().decode(errors="replace")


def old(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_dead_instance_listed_with_age_then_removed_at_start(tmp_path):
    reg = tmp_path / "reg"
    procs = []
    client = None
    try:
        dead = start_ins(reg, "dead")
        procs.append(dead)
        # A program attached to it, so that it has a clients/PID entry.
        client = subprocess.Popen([BUILD / "mwrun", "-r", reg, "-s", reg / "ins/dead/ins.sock", "--no-dns", "--",
                                   "/usr/bin/python3", "-c",
                                   "import socket, time; s = socket.socket(); print('up', flush=True); "
                                   "time.sleep(60)"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert client.stdout.readline() == b"up\n"
        end = time.monotonic() + 10
        while time.monotonic() < end and not list((reg / "clients").iterdir()):
            time.sleep(0.05)
        (cpid,) = [p.name for p in (reg / "clients").iterdir()]

        stopped = start_ins(reg, "stopped")     # SIGSTOPped: its socket still takes connects
        live = start_ins(reg, "live")
        procs += [stopped, live]
        stopped.send_signal(signal.SIGSTOP)

        dead.kill()
        dead.wait()
        client.kill()
        client.wait()
        assert (reg / "ins/dead").is_dir() and (reg / "clients" / cpid).is_dir()
        time.sleep(3)  # two beats missed by the stopped one too
        ins = status(reg)
        assert ins["dead"]["alive"] is False and ins["dead"]["dead_for_s"] >= 2.5, ins["dead"]
        assert ins["live"]["alive"] is True and ins["live"]["dead_for_s"] is None
        text = subprocess.run([BUILD / "mwctl", "-r", reg, "status"], capture_output=True, text=True).stdout
        assert "dead: process %d does not exist; for " % dead.pid in text, text
        assert "since its last heartbeat at " in text, text

        # What else a registry can hold: an entry left empty (a --user mwinsd may not remove its directory),
        # one whose pid is now another program's, one being made this instant, and a client of none of them.
        (reg / "ins/empty").mkdir()
        old(reg / "ins/empty", 3600)
        (reg / "ins/reused").mkdir()
        (reg / "ins/reused/pid").write_text("%d\n" % os.getpid())   # python, not mwinsd
        (reg / "ins/reused/sock").write_text("%s\n" % (reg / "ins/reused/ins.sock"))
        (reg / "ins/new").mkdir()                                     # no pid yet, but just made
        (reg / "clients/77777").mkdir()
        (reg / "clients/77777/ins").write_text("reused\n")

        after = start_ins(reg, "after")
        procs.append(after)
        left = sorted(p.name for p in (reg / "ins").iterdir())
        assert left == ["after", "live", "new", "stopped"], left
        assert not (reg / "clients" / cpid).exists() and not (reg / "clients/77777").exists()
        assert sorted(status(reg)) == ["after", "live", "new", "stopped"]
    finally:
        if client and client.poll() is None:
            client.kill()
            client.wait()
        errs = [stop(p) for p in procs]
    log = errs[-1]
    assert "removed the entry of instance dead (pid %d)" % dead.pid in log, log
    assert "removed the entry of instance reused" in log and "removed the entry of instance empty" in log, log
    for e in errs:
        san_check(e, "mwinsd")
