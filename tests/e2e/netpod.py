#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Servers and probes for the end-to-end tests, run inside pod namespaces.

  netpod.py serve NAME PORT...
      TCP and UDP on every PORT (IPv4 and IPv6 wildcard). TCP: writes
      "NAME\\n" and closes. UDP: answers each datagram with "NAME\\n".
  netpod.py probe TIMEOUT TARGET...
      TARGET = IP,PORT,tcp|udp. All targets at once, non-blocking; prints
      "TARGET ok NAME" or "TARGET fail WHY" per target, in input order.
      TCP succeeds when the banner arrives; UDP when the answer arrives
      (the datagram is resent every 200 ms until TIMEOUT seconds).
  netpod.py watch SECONDS INTERVAL TIMEOUT IP,PORT,tcp
      A new TCP connection every INTERVAL seconds for SECONDS, each given
      TIMEOUT; prints "ok N fail M" and the times (relative) of the first
      and last success and failure.
  netpod.py echo PORT
      TCP echo server (threads), for long-lived flows.
  netpod.py stream IP PORT SECONDS
      One TCP connection held for SECONDS, a line sent and echoed every
      20 ms; prints "sent N echoed M maxgap_ms G".
  netpod.py udpsend IP PORT SECONDS
      One-way UDP: a 64-byte datagram every 10 ms for SECONDS; prints
      "sent N".
  netpod.py udpsink PORT SECONDS
      Counts datagrams arriving on UDP PORT for SECONDS (prints "ready"
      first); prints "received N last T", T the kernel's wall-clock
      receive time (SO_TIMESTAMPNS, comparable with time.time()) of the
      last one, 0 if none: a sink descheduled for a while does not date
      an early datagram late.
Standard library only.
"""

import errno
import os
import selectors
import socket
import struct
import sys
import time


def serve(name, ports):
    banner = (name + "\n").encode()
    sel = selectors.DefaultSelector()
    for port in ports:
        for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            try:
                t = socket.socket(fam, socket.SOCK_STREAM)
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                t.bind((any_addr, port))
                t.listen(256)
                t.setblocking(False)
                sel.register(t, selectors.EVENT_READ, "tcp")
                u = socket.socket(fam, socket.SOCK_DGRAM)
                if fam == socket.AF_INET6:
                    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                u.bind((any_addr, port))
                u.setblocking(False)
                sel.register(u, selectors.EVENT_READ, "udp")
            except OSError as e:
                if fam == socket.AF_INET:
                    raise
                print("serve: no IPv6 on port %d: %s" % (port, e), file=sys.stderr)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            try:
                if key.data == "tcp":
                    c, _ = s.accept()
                    c.setblocking(True)
                    c.settimeout(1)
                    try:
                        c.sendall(banner)
                    finally:
                        c.close()
                else:
                    _, peer = s.recvfrom(2048)
                    s.sendto(banner, peer)
            except OSError:
                pass


def parse_target(t):
    ip, port, proto = t.rsplit(",", 2)
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return fam, ip, int(port), proto


def probe(timeout, targets):
    sel = selectors.DefaultSelector()
    result = {}
    state = {}
    deadline = time.monotonic() + timeout
    for t in targets:
        fam, ip, port, proto = parse_target(t)
        if proto == "tcp":
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((ip, port))
            if err not in (0, errno.EINPROGRESS):
                result[t] = "fail connect:" + errno.errorcode.get(err, str(err))
                s.close()
                continue
            state[s] = [t, "connecting", b"", 0.0]
            sel.register(s, selectors.EVENT_WRITE)
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.connect((ip, port))
            state[s] = [t, "udp", b"", 0.0]
            sel.register(s, selectors.EVENT_READ)
    while state:
        now = time.monotonic()
        if now >= deadline:
            break
        for s, st in state.items():
            if st[1] == "udp" and now >= st[3]:
                try:
                    s.send(b"probe\n")
                except OSError:
                    pass
                st[3] = now + 0.2
        for key, _ in sel.select(timeout=min(0.05, max(0.0, deadline - now))):
            s = key.fileobj
            st = state[s]
            done = None
            if st[1] == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    done = "fail connect:" + errno.errorcode.get(err, str(err))
                else:
                    st[1] = "reading"
                    sel.modify(s, selectors.EVENT_READ)
                    continue
            else:
                try:
                    data = s.recv(2048)
                except OSError as e:
                    data = None
                    done = "fail recv:" + errno.errorcode.get(e.errno, str(e.errno))
                if data is not None:
                    st[2] += data
                    if b"\n" in st[2] or (not data and st[2]):
                        done = "ok " + st[2].split(b"\n")[0].decode(errors="replace")
                    elif not data:
                        done = "fail eof"
            if done:
                result[st[0]] = done
                sel.unregister(s)
                s.close()
                del state[s]
    for s, st in state.items():
        result[st[0]] = "fail timeout"
        s.close()
    for t in targets:
        print(t, result[t], flush=False)
    sys.stdout.flush()


def watch(seconds, interval, timeout, target):
    fam, ip, port, _ = parse_target(target)
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    nxt = t0
    ok, fail = [], []
    live = {}
    while True:
        now = time.monotonic()
        if now >= nxt and now < t0 + seconds:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((ip, port))
            live[s] = [now, "connecting", b""]
            sel.register(s, selectors.EVENT_WRITE)
            nxt += interval
        if not live and now >= t0 + seconds:
            break
        for key, _ in sel.select(timeout=0.01):
            s = key.fileobj
            st = live[s]
            done = None
            if st[1] == "connecting":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    done = False
                else:
                    try:
                        s.send(b"ping\n")  # echo servers answer it, banner servers ignore it
                    except OSError:
                        pass
                    st[1] = "reading"
                    sel.modify(s, selectors.EVENT_READ)
                    continue
            else:
                try:
                    data = s.recv(256)
                except OSError:
                    data = b""
                done = bool(data)
            sel.unregister(s)
            s.close()
            (ok if done else fail).append(st[0] - t0)
            del live[s]
        for s in [s for s, st in live.items() if time.monotonic() - st[0] > timeout]:
            fail.append(live[s][0] - t0)
            sel.unregister(s)
            s.close()
            del live[s]

    def span(v):
        return "%.2f..%.2f" % (min(v), max(v)) if v else "-"
    print("ok %d fail %d ok_at %s fail_at %s" % (len(ok), len(fail), span(ok), span(fail)))


def echo(port):
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)
    print("ready", flush=True)

    def serve_one(c):
        try:
            while True:
                data = c.recv(4096)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def stream(ip, port, seconds):
    s = socket.create_connection((ip, port), timeout=3)
    s.settimeout(0.02)
    t0 = time.monotonic()
    sent = echoed = 0
    last = t0
    maxgap = 0.0
    buf = b""
    while time.monotonic() - t0 < seconds:
        s.sendall(b"x\n")
        sent += 1
        end = time.monotonic() + 0.02
        while time.monotonic() < end:
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                print("sent %d echoed %d maxgap_ms %.0f closed" % (sent, echoed, maxgap * 1e3))
                return
            buf += data
            n = buf.count(b"\n")
            if n:
                now = time.monotonic()
                maxgap = max(maxgap, now - last)
                last = now
                echoed += n
                buf = buf[buf.rfind(b"\n") + 1:]
    maxgap = max(maxgap, time.monotonic() - last)
    print("sent %d echoed %d maxgap_ms %.0f" % (sent, echoed, maxgap * 1e3))


def udpsend(ip, port, seconds):
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < seconds:
        try:
            s.sendto(b"x" * 64, (ip, port))
            sent += 1
        except OSError:
            pass
        time.sleep(0.01)
    print("sent %d" % sent)


# Python's socket module lacks it on some builds; 35 on Linux (64-bit timespec on x86_64).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def udpsink(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.05)
    print("ready", flush=True)
    t0 = time.monotonic()
    received = 0
    last = 0.0
    while time.monotonic() - t0 < seconds:
        try:
            _, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(16))
        except socket.timeout:
            continue
        received += 1
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                last = sec + nsec / 1e9
    print("received %d last %.3f" % (received, last))


def main(argv):
    if len(argv) >= 3 and argv[1] == "serve":
        serve(argv[2], [int(p) for p in argv[3:]])
    elif len(argv) >= 3 and argv[1] == "probe":
        probe(float(argv[2]), argv[3:])
    elif len(argv) == 6 and argv[1] == "watch":
        watch(float(argv[2]), float(argv[3]), float(argv[4]), argv[5])
    elif len(argv) == 3 and argv[1] == "echo":
        echo(int(argv[2]))
    elif len(argv) == 5 and argv[1] == "stream":
        stream(argv[2], int(argv[3]), float(argv[4]))
    elif len(argv) == 5 and argv[1] == "udpsend":
        udpsend(argv[2], int(argv[3]), float(argv[4]))
    elif len(argv) == 4 and argv[1] == "udpsink":
        udpsink(int(argv[2]), float(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
