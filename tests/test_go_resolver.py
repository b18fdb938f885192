"""Go's own resolver under mwrun resolves through mwinsd.

With GODEBUG=netdns=go a Go program reads /etc/resolv.conf and queries over UDP with raw system calls.
Under `mwrun --dns ADDR` that resolv.conf names ADDR, which answers inside the command's namespace (the
forwarder, src/run/dnsfwd.c, which carries each query through mwinsd); the connection that follows is
carried by mwrun's supervisor (src/run/sup.c).  `hey` (Go) fetches http://NAME:PORT/ from nginx in world,
where dnsmasq knows NAME; dnsmasq must see the query come from the INS's address.

    [app: hey, GODEBUG=netdns=go] --udp--> [forwarder, in app's namespace] --channel--> [mwinsd] --> [world: dnsmasq, nginx]
"""

import os
import shutil
import subprocess

import pytest

from conftest import BUILD, need

NAME = "gohey.mwtest"

NGINX_CONF = """
daemon off;
master_process off;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {p}/tmp;
    server {{
        listen {port};
        root {p}/html;
        location / {{ }}
    }}
}}
"""


def need_sbin(tool):
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin") or need(tool)


@pytest.fixture(scope="module")
def world(topo):
    log = topo.tmpdir / "dnsmasq-go.log"
    d = topo.popen(topo.world, [
        need_sbin("dnsmasq"), "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        "--pid-file=", "--listen-address=10.77.0.2", "--bind-interfaces", "--port=53",
        f"--host-record={NAME},10.77.0.2", "--local=/mwtest/", "--log-queries", f"--log-facility={log}"])
    topo.wait_port(topo.world, 53, proto="udp", proc=d)
    p = topo.tmpdir / "nginx-resolver"
    (p / "html").mkdir(parents=True)
    (p / "tmp").mkdir()
    (p / "html" / "index.html").write_text("resolved by go\n")
    port = topo.port()
    (p / "nginx.conf").write_text(NGINX_CONF.format(p=p, port=port))
    n = topo.popen(topo.world, [need("nginx"), "-p", p, "-c", p / "nginx.conf", "-e", p / "error.log"])
    topo.wait_port(topo.world, port, proc=n)
    return port, log


def test_go_resolver_through_mwinsd(topo, ins, world):
    port, log = world
    env = dict(os.environ, GODEBUG="netdns=go+1")
    env.pop("MWCOMMS_DNS", None)
    argv = ["ip", "netns", "exec", topo.ins, str(BUILD / "mwrun"), "-r", str(ins.registry), "--dns", "10.77.0.2",
            "--", need("hey"), "-n", "20", "-c", "2", "-t", "20", f"http://{NAME}:{port}/index.html"]
    r = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=120, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "[200]\t20 responses" in r.stdout and "Error distribution" not in r.stdout, (r.stdout, r.stderr)
    # Go's own resolver answered (GODEBUG's +1 says which), and the query reached dnsmasq from the INS
    assert "go package net" in r.stderr and "Go's resolver" in r.stderr, r.stderr
    queries = [l for l in log.read_text().splitlines() if f"query[A] {NAME}" in l]
    assert queries and all(f"from {topo.ins4}" in l for l in queries), queries
