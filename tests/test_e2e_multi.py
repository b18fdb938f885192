"""(e) Several programs at once on one mwinsd, each reaching world, with their
sockets kept apart."""

import threading
import time

import pytest

from conftest import PY, need, san_check, sha256_file, url, output

N = 4
SIZE = 24 * 1024 * 1024
RATE = "8M"  # each download takes ~3 s, so all of them overlap


def curl_clients(ins):
    return {pid: v for pid, v in ins.clients().items()
            if v.get("exe") and v["exe"].rstrip().endswith("curl")}


def test_concurrent_curls(topo, ins, world_http):
    need("curl")
    names = [f"multi{i}.bin" for i in range(N)]
    for n in names:
        world_http.add(n, SIZE)
    shas = [world_http.files[n][1] for n in names]
    assert len(set(shas)) == N

    procs = []
    for i, n in enumerate(names):
        fam = 4 if i % 2 == 0 else 6
        out = topo.tmpdir / f"got-{n}"
        procs.append((ins.popen([need("curl"), "-sS", "--fail", "--max-time", "30",
                                 "--limit-rate", RATE, "-o", out, world_http.url(n, fam)]),
                      out, n))

    # watch the registry while they run
    max_seen, seen_pids = 0, set()
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and any(p.poll() is None for p, _, _ in procs):
        cl = curl_clients(ins)
        max_seen = max(max_seen, len(cl))
        seen_pids.update(cl)
        time.sleep(0.05)
    for p, _, _ in procs:
        if p.poll() is None:
            topo.stop(p, timeout=1)

    for p, out, n in procs:
        _, err = output(p)
        san_check(err, "curl under mwrun")
        assert p.returncode == 0, f"curl {n} exited {p.returncode}: {err}"
        assert sha256_file(out) == world_http.files[n][1], f"{n}: wrong content"

    assert len(seen_pids) >= N, f"registry showed only {sorted(seen_pids)} as curl clients"
    assert max_seen >= N, f"at most {max_seen} curl clients were in the registry at once"

    # the server saw N distinct connections, each fetching its own file
    gets = [e for e in world_http.entries() if e["path"].lstrip("/") in names]
    assert sorted(e["path"].lstrip("/") for e in gets) == sorted(names)
    assert len({(e["addr"], e["port"]) for e in gets}) == N
    assert all(e["bytes"] == SIZE for e in gets)

    # detached processes leave the registry
    deadline = time.monotonic() + 5
    while curl_clients(ins) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not curl_clients(ins), f"stale client entries: {curl_clients(ins)}"


def test_mwrun_client_to_mwrun_server(topo, ins):
    """A server and a client, both under mwrun, meeting through mwinsd."""
    need("curl")
    d = topo.tmpdir / "pair"
    d.mkdir(mode=0o755)
    (d / "hello.txt").write_text("ping through the channel twice\n")
    (d / "hello.txt").chmod(0o644)
    port = topo.port()
    srv = ins.popen([PY, "-m", "http.server", port, "--bind", "0.0.0.0", "--directory", d])
    try:
        topo.wait_port(topo.ins, port, timeout=15, proc=srv)
        results = [None] * N

        def one(i):
            results[i] = ins.run([need("curl"), "-sS", "--fail", "--max-time", "30",
                                  url(topo.ins4, port, "hello.txt")], timeout=60)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(90)
        for r in results:
            assert r is not None, "a client did not finish"
            san_check(r.stderr, "curl under mwrun")
            assert r.returncode == 0, r.stderr
            assert r.stdout == "ping through the channel twice\n"
    finally:
        topo.stop(srv)
    san_check(output(srv)[1], "http.server under mwrun")


def test_mwrun_passes_over_an_ins_of_another_version(topo, ins):
    """An INS whose registry entry names another protocol version (an older mwinsd left running through an
    upgrade) is passed over, with a message that says why; mwrun starts its own and the command runs."""
    vf = ins.sock_dir / "version"
    mine = vf.read_text()
    vf.write_text(f"{int(mine) - 1}\n")
    try:
        r = ins.run([PY, "-c", "import socket; socket.socket(); print('ran')"], timeout=30)
    finally:
        vf.write_text(mine)
    assert r.returncode == 0 and r.stdout.strip() == "ran", (r.stdout, r.stderr)
    assert f"passing over INS {ins.id}: it speaks protocol version {int(mine) - 1}" in r.stderr, r.stderr
