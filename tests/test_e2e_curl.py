"""(a) curl under mwrun against an HTTP server in world, IPv4 and IPv6:
100 MB download and 100 MB upload, each checked by sha256."""

import pytest

from conftest import need, san_check, sha256_file, make_file

SIZE = 100 * 1024 * 1024
FAMILIES = [4, 6]


@pytest.fixture(scope="module")
def big(world_http):
    world_http.add("big.bin", SIZE)
    return world_http


@pytest.fixture(scope="module")
def upload_file(topo):
    path = topo.tmpdir / "upload.bin"
    sha = make_file(path, SIZE)
    return path, sha


def curl_argv(*args):
    return [need("curl"), "-sS", "--fail", "--max-time", "60",
            "-w", "\\n%{http_code} %{remote_ip} %{local_port} %{size_download} %{size_upload}\\n",
            *args]


def parse_w(stdout):
    code, remote_ip, local_port, down, up = stdout.strip().splitlines()[-1].split()
    return int(code), remote_ip, int(local_port), int(float(down)), int(float(up))


@pytest.mark.parametrize("family", FAMILIES)
def test_download_100mb(topo, ins, big, family):
    out = topo.tmpdir / f"down{family}.bin"
    r = ins.run(curl_argv("-o", out, big.url("big.bin", family)), timeout=120)
    san_check(r.stderr, "curl under mwrun")
    assert r.returncode == 0, f"curl failed ({r.returncode}): {r.stderr}"
    code, remote_ip, local_port, down, _ = parse_w(r.stdout)
    assert code == 200
    assert down == SIZE
    assert out.stat().st_size == SIZE
    assert sha256_file(out) == big.files["big.bin"][1], "downloaded content differs"
    world = topo.world4 if family == 4 else topo.world6
    assert remote_ip == world, "getpeername under mwrun did not give the server's address"
    # the server saw the connection come from mwinsd's namespace, on the port
    # that curl's getsockname reported
    seen = [e for e in big.entries() if e["method"] == "GET" and e["port"] == local_port]
    assert seen, f"server log has no GET from port {local_port}: {big.entries()}"
    assert seen[-1]["addr"] == (topo.ins4 if family == 4 else topo.ins6)
    assert seen[-1]["bytes"] == SIZE
    out.unlink()


@pytest.mark.parametrize("family", FAMILIES)
def test_upload_100mb(topo, ins, big, upload_file, family):
    path, sha = upload_file
    r = ins.run(curl_argv("-T", path, big.url(f"up{family}", family)), timeout=120)
    san_check(r.stderr, "curl under mwrun")
    assert r.returncode == 0, f"curl failed ({r.returncode}): {r.stderr}"
    lines = r.stdout.strip().splitlines()
    code, remote_ip, local_port, _, up = parse_w(r.stdout)
    assert code == 200
    assert up == SIZE
    got_sha, got_n = lines[0].split()
    assert int(got_n) == SIZE, f"server received {got_n} bytes, expected {SIZE}"
    assert got_sha == sha, "server received different content"
    seen = [e for e in big.entries() if e["method"] == "PUT" and e["port"] == local_port]
    assert seen and seen[-1]["sha"] == sha


@pytest.mark.parametrize("family", FAMILIES)
def test_post_chunked(topo, ins, big, family):
    """A chunked POST (curl reads stdin): the upload path with no length known."""
    path = topo.tmpdir / f"post{family}.bin"
    sha = make_file(path, 8 * 1024 * 1024 + 12345)
    with open(path, "rb") as f:
        r = ins.run(curl_argv("-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                              big.url("post", family)), stdin=f, timeout=120)
    san_check(r.stderr, "curl under mwrun")
    assert r.returncode == 0, f"curl failed ({r.returncode}): {r.stderr}"
    got_sha, got_n = r.stdout.strip().splitlines()[0].split()
    assert int(got_n) == path.stat().st_size
    assert got_sha == sha
