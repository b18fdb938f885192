"""(c) iperf3 and sockperf under mwrun against servers in world (TCP only:
UDP over the channel is issue 3)."""

import json
import re

import pytest

from conftest import need, san_check, output


@pytest.mark.parametrize("family,reverse", [(4, False), (4, True), (6, False), (6, True)],
                         ids=["v4-send", "v4-recv", "v6-send", "v6-recv"])
def test_iperf3(topo, ins, family, reverse):
    need("iperf3")
    port = topo.port()
    srv = topo.popen(topo.world, ["iperf3", "-s", "-1", "-p", port])
    topo.wait_port(topo.world, port, proc=srv)
    target = topo.world4 if family == 4 else topo.world6
    argv = ["iperf3", "-c", target, "-p", port, "-t", "3", "--json", "--connect-timeout", "5000"]
    if reverse:
        argv.append("-R")
    r = ins.run(argv, timeout=60)
    san_check(r.stderr, "iperf3 under mwrun")
    try:
        res = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"iperf3 printed no JSON (rc={r.returncode}):\n{r.stdout}\n{r.stderr}")
    assert "error" not in res, f"iperf3 error: {res.get('error')}"
    assert r.returncode == 0, r.stderr
    end = res["end"]
    sent = end["sum_sent"]["bytes"]
    received = end["sum_received"]["bytes"]
    assert sent > 0 and received > 0, (sent, received)
    # the receiver got (nearly) all the sender wrote: only what was still in
    # flight when the test stopped may be missing
    assert received <= sent
    assert received >= 0.9 * sent, (sent, received)
    assert res["start"]["test_start"]["reverse"] == int(reverse)
    assert res["start"]["connected"], res["start"]
    peer = res["start"]["connected"][0]["remote_host"]
    assert peer.replace("::ffff:", "") == target
    srv.wait(timeout=10)
    assert srv.returncode == 0, f"iperf3 server: {output(srv)}"


def test_sockperf_ping_pong(topo, ins):
    need("sockperf")
    port = topo.port()
    srv = topo.popen(topo.world, ["sockperf", "server", "--tcp", "-i", topo.world4, "-p", port])
    topo.wait_port(topo.world, port, proc=srv)
    r = ins.run(["sockperf", "ping-pong", "--tcp", "-i", topo.world4, "-p", port, "-t", "3"],
                timeout=60)
    text = r.stdout + r.stderr
    san_check(r.stderr, "sockperf under mwrun")
    assert r.returncode == 0, f"sockperf rc={r.returncode}:\n{text}"
    assert "ERROR" not in text, text
    m = re.search(r"avg-latency=([\d.]+)", text) or re.search(r"avg-rtt=([\d.]+)", text)
    assert m, f"no latency reported:\n{text}"
    assert float(m.group(1)) > 0
    m = re.search(r"\[Valid Duration\].*?SentMessages=(\d+); ReceivedMessages=(\d+)", text)
    assert m, f"no message counts:\n{text}"
    sent, received = int(m.group(1)), int(m.group(2))
    assert sent > 0 and received > 0
    assert abs(sent - received) <= 1, (sent, received)
    assert srv.poll() is None, f"sockperf server died: {output(srv)}"
    topo.stop(srv)
