"""The IPFIX exporter (src/ins/ipfix.c) against real collectors: what they decode must be what was sent.

    BUILD/unit/test_ipfix send 127.0.0.1:PORT N  --UDP-->  nfcapd -w TMP -t 2   (Debian's nfdump 1.7.1)
         prints each flow it exported                        |  a file every 2 s, the last one on SIGTERM
                                                             v
                                                nfdump -r FILE -o json / -o csv
    and
    BUILD/unit/test_ipfix send ...  --UDP-->  a socket here  -->  a pcap  -->  tshark -V (Wireshark's dissector)

test_ipfix sends N sample flows of both families (distinct tuples and counts, exe/comm strings: see sample() in
tests/unit/test_ipfix.c) and prints "flow I FAMILY SRC SPORT DST DPORT PROTO BYTES RBYTES PACKETS RPACKETS".

What nfdump 1.7.1 shows of our elements (found with this test; those marked * are compared below):
  * sourceIPv4/IPv6Address (8/27)        csv sa     json src4_addr / src6_addr
  * destinationIPv4/IPv6Address (12/28)  csv da     json dst4_addr / dst6_addr
  * sourceTransportPort (7)              csv sp     json src_port
  * destinationTransportPort (11)        csv dp     json dst_port
  * protocolIdentifier (4)               csv pr     json proto          (csv as a name: TCP, UDP)
  * octetDeltaCount (1)                  csv ibyt   json in_bytes
  * packetDeltaCount (2)                 csv ipkt   json in_packets
  * reverse octetDeltaCount (1, PEN 29305)   csv obyt   json out_bytes    nfdump maps them as it maps
  * reverse packetDeltaCount (2, PEN 29305)  csv opkt   json out_packets  postOctet/PacketDeltaCount (23/24)
    flowStart/EndMilliseconds (152/153)  csv ts, te json first, last
  * tcpControlBits (6)                   csv flg    json tcp_flags      (as "...A..SF")
    flowEndReason (136)                  only in -o raw ("end reason")
    mwcomms' PEN elements (1-9)          nowhere: nfdump skips enterprise elements it does not know.
Its per-interval log line must also count no sequence errors: our sequence numbers are what it expects.

nfcapd and tshark are Debian packages that scripts/deps installs: a missing one fails the test, never skips it.
"""
import csv
import io
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import BUILD

EXE = BUILD / "unit" / "test_ipfix"
N = 40            # several full messages, both families, every padding length
ROTATE_S = 2      # nfcapd's file interval: files to read appear this often
DEADLINE_S = 20   # for every flow to reach a file


def need_tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it comes with Debian's "
                    f"{'nfdump' if name.startswith('nf') else name} package (scripts/deps installs it)")
    return path


def need_exe():
    assert EXE.exists(), f"{EXE} is not built (make unit)"
    return str(EXE)


def parse_sent(stdout):
    """test_ipfix send's lines into {(src, sport): flow}; the source port alone is unique, too."""
    flows = {}
    for line in stdout.splitlines():
        if not line.startswith("flow "):
            continue
        _, i, fam, sa, sp, da, dp, pr, byt, rbyt, pkt, rpkt = line.split()
        f = dict(i=int(i), family=int(fam), sa=ipaddress.ip_address(sa), sp=int(sp),
                 da=ipaddress.ip_address(da), dp=int(dp), proto=int(pr), bytes=int(byt), rbytes=int(rbyt),
                 packets=int(pkt), rpackets=int(rpkt))
        flows[(f["sa"], f["sp"])] = f
    return flows


def send(collector, n):
    r = subprocess.run([need_exe(), "send", collector, str(n)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"test_ipfix send failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    sent = parse_sent(r.stdout)
    assert len(sent) == n, f"test_ipfix printed {len(sent)} distinct flows, not {n}:\n{r.stdout[-2000:]}"
    assert {f["family"] for f in sent.values()} == {4, 6}, "the sample flows must cover both families"
    return sent


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nfcapd:
    """nfcapd on 127.0.0.1:port writing into flowdir; stopped (SIGTERM, then SIGKILL) by stop(), always."""

    def __init__(self, flowdir, logpath):
        self.flowdir, self.logpath = flowdir, logpath
        self.proc = None

    def start(self):
        exe = need_tool("nfcapd")
        for _ in range(3):  # the port is picked free, but another process could take it first
            self.port = free_udp_port()
            log = open(self.logpath, "w")
            self.proc = subprocess.Popen([exe, "-w", str(self.flowdir), "-b", "127.0.0.1", "-p", str(self.port),
                                          "-t", str(ROTATE_S)], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if "Startup nfcapd." in self.log():
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.stop()
        pytest.fail(f"nfcapd did not start:\n{self.log()}")

    def log(self):
        try:
            return Path(self.logpath).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM: nfcapd closes its current file under its final name.  Returns the exit status."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            pytest.fail(f"nfcapd ignored SIGTERM for 10 s:\n{self.log()}")


def flow_files(flowdir):
    """The files nfcapd has finished: nfcapd.YYYYMMDDhhmm[ss] (the one being written is nfcapd.current.PID)."""
    return sorted(p for p in Path(flowdir).iterdir() if re.fullmatch(r"nfcapd\.\d{12,14}", p.name))


def nfdump(path, fmt):
    r = subprocess.run([need_tool("nfdump"), "-r", str(path), "-o", fmt], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"nfdump -r {path} -o {fmt}: {r.returncode}\n{r.stderr[-2000:]}"
    return r.stdout


def nfdump_json(flowdir):
    recs = []
    for f in flow_files(flowdir):
        out = nfdump(f, "json")
        # nfdump 1.7.1 prints "[\nNo matching flows\n]" for a file without flows: not JSON.
        if "No matching flows" in out:
            continue
        recs += [r for r in json.loads(out) if r.get("type") == "FLOW"]
    return recs


def nfdump_csv(flowdir):
    rows = []
    for f in flow_files(flowdir):
        lines = []
        for line in nfdump(f, "csv").splitlines():
            if line in ("No matching flows", "Summary") or not line.strip():
                break
            lines.append(line)
        rows += list(csv.DictReader(io.StringIO("\n".join(lines))))
    return rows


def json_key(r):
    sa = r.get("src4_addr") or r.get("src6_addr")
    return (ipaddress.ip_address(sa), int(r["src_port"]))


def test_nfcapd_decodes_every_flow(tmp_path):
    need_tool("nfdump")
    flowdir = tmp_path / "flows"
    flowdir.mkdir()
    cap = Nfcapd(flowdir, tmp_path / "nfcapd.log")
    try:
        cap.start()
        sent = send(f"127.0.0.1:{cap.port}", N)
        # Wait until every flow is in a finished file (one comes every ROTATE_S seconds), so that stopping
        # nfcapd cannot race its reading of the last datagram.
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and len(nfdump_json(flowdir)) < N:
            time.sleep(0.5)
        rc = cap.stop()
    finally:
        cap.stop()
    log = cap.log()
    assert rc == 0, f"nfcapd exited with {rc}:\n{log}"

    recs = nfdump_json(flowdir)
    got = {}
    for r in recs:
        k = json_key(r)
        assert k not in got, f"flow {k} decoded twice"
        got[k] = r
    missing = sorted(str(k) for k in sent.keys() - got.keys())
    extra = sorted(str(k) for k in got.keys() - sent.keys())
    assert not missing and not extra, f"nfdump: missing {missing}, unexpected {extra}\nnfcapd log:\n{log}"

    for k, s in sent.items():
        r = got[k]
        fam = "4" if s["family"] == 4 else "6"
        want = {
            f"src{fam}_addr": s["sa"], f"dst{fam}_addr": s["da"], "src_port": s["sp"], "dst_port": s["dp"],
            "proto": s["proto"], "in_bytes": s["bytes"], "out_bytes": s["rbytes"],
            "in_packets": s["packets"], "out_packets": s["rpackets"],
        }
        have = {
            key: (ipaddress.ip_address(r[key]) if key.endswith("_addr") else int(r[key])) if key in r else None
            for key in want
        }
        assert have == want, f"flow {s['i']}: nfdump json shows {have}, sent {want}"
        assert r["tcp_flags"] == ("...A..SF" if s["proto"] == 6 else "........"), \
            f"flow {s['i']}: tcp_flags {r['tcp_flags']}"

    # The same through -o csv, whose column names differ (protocol as a name).
    rows = nfdump_csv(flowdir)
    assert len(rows) == N, f"nfdump -o csv: {len(rows)} rows, not {N}"
    for row in rows:
        s = sent.get((ipaddress.ip_address(row["sa"]), int(row["sp"])))
        assert s is not None, f"nfdump csv: a flow that was not sent: {row}"
        have = (ipaddress.ip_address(row["da"]), int(row["dp"]), row["pr"].strip(), int(row["ibyt"]),
                int(row["obyt"]), int(row["ipkt"]), int(row["opkt"]))
        want = (s["da"], s["dp"], {6: "TCP", 17: "UDP"}[s["proto"]], s["bytes"], s["rbytes"], s["packets"],
                s["rpackets"])
        assert have == want, f"flow {s['i']}: nfdump csv shows {have}, sent {want}"

    # nfcapd's own account: every flow, no sequence errors (our sequence numbers are what it expects), no bad
    # packets (it parsed our sets, padding and variable-length strings).
    stats = re.findall(r"Flows: (\d+), .*Sequence Errors: (\d+), Bad Packets: (\d+)", log)
    assert stats, f"no statistics line in nfcapd's log:\n{log}"
    assert sum(int(f) for f, _, _ in stats) == N, f"nfcapd counted other than {N} flows:\n{log}"
    assert all(int(se) == 0 and int(bp) == 0 for _, se, bp in stats), f"nfcapd saw errors:\n{log}"


def capture(n):
    """Run test_ipfix send against a socket here; return (sent flows, the messages)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        sent = send(f"127.0.0.1:{s.getsockname()[1]}", n)
        msgs = []
        try:
            while True:
                msgs.append(s.recv(65536))
        except socket.timeout:
            pass
    return sent, msgs


def write_pcap(path, msgs, dport=4739):
    """The messages as IPv4/UDP packets 127.0.0.1 -> 127.0.0.1:dport, in a pcap of raw IP (linktype 101)."""
    def csum(b):
        t = sum(struct.unpack(f"!{len(b) // 2}H", b))
        while t >> 16:
            t = (t >> 16) + (t & 0xFFFF)
        return ~t & 0xFFFF

    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i, m in enumerate(msgs):
            udp = struct.pack("!HHHH", 40000, dport, 8 + len(m), 0) + m
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                             socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            out.write(struct.pack("<IIII", i, 0, len(ip + udp), len(ip + udp)) + ip + udp)


def test_tshark_decodes_every_field(tmp_path):
    tshark = need_tool("tshark")
    sent, msgs = capture(N)
    assert msgs and all(len(m) <= 1400 for m in msgs), f"message lengths {[len(m) for m in msgs]}"
    pcap = tmp_path / "ipfix.pcap"
    write_pcap(pcap, msgs)
    r = subprocess.run([tshark, "-r", str(pcap), "-d", "udp.port==4739,cflow", "-T", "pdml"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"tshark: {r.returncode}\n{r.stderr[-2000:]}"
    root = ET.fromstring(r.stdout)
    problems = [f.get("showname") or f.get("name") for f in root.iter("field")
                if f.get("name", "").startswith(("_ws.malformed", "_ws.expert"))]
    problems += [p.get("name") for p in root.iter("proto") if p.get("name", "").startswith("_ws.malformed")]
    assert not problems, f"tshark complains: {problems[:10]}"

    seqs = [int(f.get("show")) for f in root.iter("field") if f.get("name") == "cflow.sequence"]
    flows = [f for f in root.iter("field") if f.get("name") == "" and (f.get("show") or "").startswith("Flow ")]
    assert len(flows) == N, f"tshark found {len(flows)} flow records, not {N}"
    assert seqs[0] == 0 and all(b >= a for a, b in zip(seqs, seqs[1:])), f"sequence numbers {seqs}"

    got = {}
    for fl in flows:
        v = {"own": {}}
        for f in fl:
            name, show, sn = f.get("name"), f.get("show"), f.get("showname") or ""
            rev = "(Reverse" in sn
            if name in ("cflow.srcaddr", "cflow.srcaddrv6"):
                v["sa"] = ipaddress.ip_address(show)
            elif name in ("cflow.dstaddr", "cflow.dstaddrv6"):
                v["da"] = ipaddress.ip_address(show)
            elif name in ("cflow.srcport", "cflow.dstport", "cflow.protocol", "cflow.flow_end_reason"):
                v[name] = int(show)
            elif name == "cflow.octets":
                v["rbytes" if rev else "bytes"] = int(show)
            elif name == "cflow.packets":
                v["rpackets" if rev else "packets"] = int(show)
            elif name == "cflow.enterprise_private_entry":
                m = re.search(r"\(Example Enterprise Number for Documentation Use\) Type (\d+):", sn)
                assert m, f"an enterprise element of an unexpected PEN: {sn}"
                v["own"][int(m.group(1))] = bytes.fromhex(f.get("value") or "")
        got[(v["sa"], v["cflow.srcport"])] = v
    assert got.keys() == sent.keys(), "tshark's flows are not the ones sent"
    for k, s in sent.items():
        g = got[k]
        have = (g["da"], g["cflow.dstport"], g["cflow.protocol"], g["bytes"], g["rbytes"], g["packets"],
                g["rpackets"])
        want = (s["da"], s["dp"], s["proto"], s["bytes"], s["rbytes"], s["packets"], s["rpackets"])
        assert have == want, f"flow {s['i']}: tshark shows {have}, sent {want}"
        i = s["i"]
        # mwExe (5) and mwComm (6) as sample() makes them; mwRule (7) is empty for every third flow (tshark
        # then shows no entry) and "line-I" otherwise; mwPid (1) is 1000 + I.
        assert g["own"].get(5) == f"/usr/bin/sample-{i}".encode(), f"flow {i}: mwExe {g['own'].get(5)}"
        assert g["own"].get(6) == f"sample{i}".encode(), f"flow {i}: mwComm {g['own'].get(6)}"
        assert g["own"].get(7, b"") == (f"line-{i}".encode() if i % 3 else b""), f"flow {i}: mwRule"
        assert g["own"].get(1) == struct.pack("!I", 1000 + i), f"flow {i}: mwPid {g['own'].get(1)}"
