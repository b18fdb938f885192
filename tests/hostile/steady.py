"""A well-behaved program for the hostile tests: run under mwrun, it keeps talking to an echo server in world
while the attacks run, and says whether every exchange worked.

    steady.py HOST PORT STOPFILE MAX_SECONDS

Each round opens a new connection, sends 16 KiB of random bytes, reads them back and checks them; it also
does the same over one connection held open from the start.  One line per round:
    ok N T                 (T: time.time())
    fail N T WHAT          (what went wrong)
and at the end (STOPFILE exists, or MAX_SECONDS passed): "summary ok=N fail=F".  Exit 0.
"""

import os
import socket
import sys
import time


def roundtrip(s, payload):
    s.sendall(payload)
    got = bytearray()
    while len(got) < len(payload):
        chunk = s.recv(len(payload) - len(got))
        if not chunk:
            raise ConnectionError("EOF before the echo was complete")
        got += chunk
    if bytes(got) != payload:
        raise ValueError("echo differs")


def connect(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((host, port))
    return s


def main():
    host, port, stopfile, max_s = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    end = time.monotonic() + max_s
    ok = fail = 0
    held = None
    n = 0
    while time.monotonic() < end and not os.path.exists(stopfile):
        n += 1
        payload = os.urandom(16384)
        try:
            if held is None:
                held = connect(host, port)
            roundtrip(held, payload)
            s = connect(host, port)
            try:
                roundtrip(s, payload[::-1])
            finally:
                s.close()
            ok += 1
            print(f"ok {n} {time.time():.3f}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            fail += 1
            print(f"fail {n} {time.time():.3f} {type(e).__name__}: {e}", flush=True)
            if held is not None:
                held.close()
                held = None
            time.sleep(0.1)
        time.sleep(0.02)
    print(f"summary ok={ok} fail={fail}", flush=True)


if __name__ == "__main__":
    main()
