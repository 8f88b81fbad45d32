#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for vaktd's flows socket, for tests/flows/test_flows_cli.sh.

Serves one subscriber the bytes of a file (the golden lines of
tests/flows/events.jsonl, which tests/unit/test_flowsrv.c proves the real
server writes byte for byte), optionally in small chunks, then either closes
(as a stopping vaktd does) or holds the connection open until the client
leaves. --stale leaves a socket file nobody listens on, as a dead vaktd does.
"""
import argparse
import os
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--file")
    ap.add_argument("--chunk", type=int, default=0, help="send N bytes at a time")
    ap.add_argument("--hold", type=float, default=0, help="keep open up to S seconds")
    ap.add_argument("--stale", action="store_true")
    a = ap.parse_args()

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.socket)
    if a.stale:
        srv.close()  # the file stays, nobody listens: connect is refused
        return 0
    srv.listen(1)
    srv.settimeout(30)
    conn, _ = srv.accept()
    data = open(a.file, "rb").read() if a.file else b""
    step = a.chunk or len(data) or 1
    for i in range(0, len(data), step):
        conn.sendall(data[i:i + step])
        if a.chunk:
            time.sleep(0.002)
    if a.hold:
        conn.settimeout(a.hold)
        try:
            while conn.recv(4096):
                pass
        except (socket.timeout, ConnectionResetError):
            pass
    conn.close()
    srv.close()
    os.unlink(a.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
