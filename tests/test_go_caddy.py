"""A real Go server's bind, listen and accept, carried by mwrun's supervisor (src/run/sup.c).

`caddy` (Debian's, in Go: raw system calls, out of any preload's reach) serves a directory under mwrun;
curl in world fetches a file from it, over IPv4 and IPv6, and the bytes must be the file's (sha256).
mwinsd listens for it in its own namespace and hands each connection over on the listener's carrier.

    [world: curl] --veth--> [mwinsd in ins: the real listener] --carriers--> [app: caddy under mwrun]
"""

import hashlib
import os

import pytest

from conftest import need


@pytest.fixture(scope="module")
def caddy(topo, ins):
    exe = need("caddy")
    root = topo.tmpdir / "caddy-root"
    home = topo.tmpdir / "caddy-home"
    root.mkdir()
    home.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 17)
    (root / "blob.bin").write_bytes(data)
    (root / "blob.bin").chmod(0o644)
    port = topo.port()
    env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home), XDG_CONFIG_HOME=str(home))
    proc = ins.popen([exe, "file-server", "--root", root, "--listen", f":{port}"], env=env)
    topo.wait_port(topo.ins, port, timeout=20, proc=proc)
    return port, hashlib.sha256(data).hexdigest(), proc


@pytest.mark.parametrize("family", [4, 6])
def test_curl_fetches_from_caddy(topo, caddy, family):
    port, digest, proc = caddy
    host = topo.ins4 if family == 4 else f"[{topo.ins6}]"
    out = topo.tmpdir / f"fetched{family}.bin"
    for _ in range(3):
        r = topo.run(topo.world, [need("curl"), "-sS", "-f", "-m", "30", "-o", out,
                                  f"http://{host}:{port}/blob.bin"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert proc.poll() is None, "caddy died"
