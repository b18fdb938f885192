#!/usr/bin/python3
"""asyncio echo server and client (the event loop: asyncio's default, epoll).

    aio_echo.py server --port N [--bind ::]
        Echoes each connection until the peer half-closes, then half-closes
        too.  Prints "listening <port>" when ready and, per connection,
        "conn <peer-addr> <peer-port> <bytes> <sha256>" when it ends.

    aio_echo.py client --host ADDR --port N [--conns 16] [--size BYTES] [--timeout 60]
        Opens --conns connections at once; each writes --size random bytes in
        chunks (draining as it goes) while reading the echo, half-closes,
        reads to EOF and compares every byte.  Prints one JSON line
        {"ok":..,"failed":..,"bytes":..,"errors":[..]}; exit 0 only if all
        connections got back exactly what they sent.
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import sys


async def serve(a):
    async def handle(reader, writer):
        peer = writer.get_extra_info("peername")
        h = hashlib.sha256()
        n = 0
        try:
            while True:
                b = await reader.read(1 << 16)
                if not b:
                    break
                h.update(b)
                n += len(b)
                writer.write(b)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            await writer.drain()
        except OSError as e:
            print(f"error {peer} {e!r}", flush=True)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        host = peer[0] if peer else "?"
        if host.startswith("::ffff:"):
            host = host[7:]
        print(f"conn {host} {peer[1] if peer else 0} {n} {h.hexdigest()}", flush=True)

    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((a.bind, a.port))
    server = await asyncio.start_server(handle, sock=sock, backlog=128)
    print(f"listening {a.port}", flush=True)
    async with server:
        await server.serve_forever()


async def one(a, i):
    data = os.urandom(a.size)
    rnd = random.Random(i)
    reader, writer = await asyncio.open_connection(a.host, a.port)

    async def send():
        off = 0
        while off < len(data):
            n = min(len(data) - off, rnd.choice((1, 100, 1460, 8192, 65536, 300000)))
            writer.write(data[off:off + n])
            await writer.drain()
            off += n
        writer.write_eof()

    async def recv():
        got = bytearray()
        while True:
            b = await reader.read(1 << 16)
            if not b:
                return bytes(got)
            got.extend(b)
            if len(got) > len(data):
                return bytes(got)

    _, got = await asyncio.gather(send(), recv())
    writer.close()
    await writer.wait_closed()
    if got != data:
        return f"conn {i}: got {len(got)} bytes back, sent {len(data)}, equal={got == data}"
    return None


async def client(a):
    res = {"ok": 0, "failed": 0, "bytes": 0, "errors": []}
    tasks = [asyncio.wait_for(one(a, i), a.timeout) for i in range(a.conns)]
    for r in await asyncio.gather(*tasks, return_exceptions=True):
        if r is None:
            res["ok"] += 1
            res["bytes"] += a.size
        else:
            res["failed"] += 1
            res["errors"].append(r if isinstance(r, str) else repr(r))
    print(json.dumps(res), flush=True)
    return res["failed"] == 0 and res["ok"] == a.conns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("server", "client"))
    ap.add_argument("--host")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="::")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--size", type=int, default=200000)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    if a.mode == "server":
        asyncio.run(serve(a))
    else:
        sys.exit(0 if asyncio.run(client(a)) else 1)


if __name__ == "__main__":
    main()
