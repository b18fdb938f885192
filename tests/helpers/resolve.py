#!/usr/bin/python3
"""Resolve a name with socket.getaddrinfo, the way most programs do.

    resolve.py NAME [unspec|inet|inet6] [--addrconfig]

Prints the sorted distinct addresses as one JSON list and exits 0, or prints
"gaierror <errno> <message>" and exits 2.
"""

import json
import socket
import sys


def main():
    name = sys.argv[1]
    fam = {"unspec": socket.AF_UNSPEC, "inet": socket.AF_INET,
           "inet6": socket.AF_INET6}[sys.argv[2] if len(sys.argv) > 2 else "unspec"]
    flags = socket.AI_ADDRCONFIG if "--addrconfig" in sys.argv[3:] else 0
    try:
        res = socket.getaddrinfo(name, 80, fam, socket.SOCK_STREAM, 0, flags)
    except socket.gaierror as e:
        print(f"gaierror {e.errno} {e.strerror}")
        return 2
    print(json.dumps(sorted({r[4][0] for r in res})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
