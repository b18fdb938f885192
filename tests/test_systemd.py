"""mwinsd under systemd's notify protocol, without systemd: the test plays the service manager.

It binds the AF_UNIX datagram socket that systemd would pass as $NOTIFY_SOCKET, starts mwinsd with it, and
reads what mwinsd says: READY=1 once it serves, WATCHDOG=1 every second from its event loop (so a stopped loop
stops feeding the watchdog, as the registry heartbeat stops), STOPPING=1 on SIGTERM.
"""

import os
import signal
import socket
import subprocess
import time

from conftest import BUILD


def _read_until(sock, want, timeout):
    """Messages read until one contains want (or the time runs out): [(time, text)]."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        got.append((time.monotonic(), data.decode(errors="replace")))
        if want in got[-1][1]:
            break
    return got


def test_notify_ready_watchdog_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="3000000")
    proc = subprocess.Popen([str(BUILD / "mwinsd"), "-r", str(tmp_path / "reg"), "-i", "sd"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        got = _read_until(sock, "READY=1", 10)
        assert got and "READY=1" in got[-1][1], got
        assert (tmp_path / "reg" / "ins" / "sd" / "ins.sock").exists(), "READY=1 before the socket existed"

        beats = [t for t, m in _read_until(sock, "never", 3.5) if "WATCHDOG=1" in m]
        assert len(beats) >= 2, f"{len(beats)} watchdog messages in 3.5 s"
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        assert all(0.5 < g < 1.6 for g in gaps), gaps

        # A stalled loop feeds nothing: that is what lets systemd restart it.
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        _read_until(sock, "never", 0.1)  # what was already queued
        stalled = [m for _, m in _read_until(sock, "never", 2.2) if "WATCHDOG=1" in m]
        proc.send_signal(signal.SIGCONT)
        assert not stalled, "watchdog fed while the loop was stopped"
        assert any("WATCHDOG=1" in m for _, m in _read_until(sock, "WATCHDOG=1", 3)), "no watchdog after SIGCONT"

        proc.send_signal(signal.SIGTERM)
        got = _read_until(sock, "STOPPING=1", 5)
        assert any("STOPPING=1" in m for _, m in got), got
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    err = proc.stderr.read().decode(errors="replace")
    assert "runtime error" not in err and "AddressSanitizer" not in err, err
