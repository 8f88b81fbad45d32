#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Anti-spoofing end to end, routed and bridged pods (examples/: default deny,
frontend -> backend on TCP 8080 allowed, the intruder cut off).

The intruder puts the frontend's address on its own eth0 and sends to the
backend from it. Without a binding that is the frontend's egress and the
frontend's identity at the backend: the SYN is admitted (shown with vaktd
stopped and the frontend's binding deleted by hand). With vaktd binding
every local pod address to its veth, the packet is dropped at the
intruder's veth, counted as `spoofed`, and never reaches the backend; the
real frontend is not disturbed. Routed pods are bound by the node's routes,
bridged pods by the addresses inside their namespaces: there the first
holder keeps the binding, and an address held by two pods while bound to
neither stays unbound (logged) until one lets it go. A restarted vaktd binds
again."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log, run  # noqa: E402

PODS = e2elib.SEED_PODS
FRONTEND = PODS["production/frontend"]
TARGET = (PODS["production/backend"], 8080, "tcp")

# Sends a TCP SYN and a UDP datagram to the backend from SRC (an address of this netns).
SPOOF = r"""
import socket, sys, time
src, dst = sys.argv[1], sys.argv[2]
t = socket.socket(); t.setblocking(False); t.bind((src, 0))
t.connect_ex((dst, 8080))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((src, 0))
u.sendto(b"spoof", (dst, 8080))
time.sleep(0.5)
"""


def status(env):
    return json.loads(env.node_exec([e2elib.VAKT, "status", "--bpffs", env.bpffs, "-o", "json"],
                                    capture=True).stdout)


def counter(st, pod, direction, reason):
    return sum(c["packets"] for c in st["counters"]
               if c["pod"] == pod and c["direction"] == direction and c["reason"] == reason)


def bindings(env):
    """address -> bound ifindex (0: unbound), from vakt status."""
    out = {}
    for ep in status(env)["endpoints"]:
        for addr, ifindex in zip(ep["addresses"], ep["bound_ifindex"]):
            out[addr] = ifindex
    return out


def ifindex(env, hostif):
    link = json.loads(env.node_exec(["ip", "-j", "link", "show", hostif], capture=True).stdout)
    return link[0]["ifindex"]


def wait_bound(env, timeout=6):
    want = {ip: ifindex(env, env.pods[k].hostif) for k, ip in PODS.items()}
    deadline = time.time() + timeout
    while True:
        got = bindings(env)
        if all(got.get(ip) == i for ip, i in want.items()):
            return
        if time.time() > deadline:
            raise E2EError("pods not bound to their veths: want %s, status says %s\n%s" % (
                want, got, env.vaktd_logs(20)))
        time.sleep(0.2)


def spoof(env):
    """The intruder sends as the frontend; returns the change of the relevant counters."""
    before = status(env)
    env.pods["production/intruder"].exec([sys.executable, "-c", SPOOF, FRONTEND, TARGET[0]])
    after = status(env)

    def delta(pod, direction, reason):
        return counter(after, pod, direction, reason) - counter(before, pod, direction, reason)

    return {"spoofed": delta("", "egress", "spoofed"),
            "backend_admitted": delta("backend", "ingress", "policy_allow"),
            "as_frontend": delta("frontend", "egress", "policy_allow")}


def frontend_reaches_backend(env):
    return env.probe(env.pods["production/frontend"], [TARGET], 1.0)[TARGET][0]


def intruder_takes_frontend_address(env):
    env.pods["production/intruder"].exec(["ip", "addr", "add", FRONTEND + "/32", "dev", "eth0"])


def intruder_drops_frontend_address(env):
    env.pods["production/intruder"].exec(["ip", "addr", "del", FRONTEND + "/32", "dev", "eth0"])
    # On a bridge the backend may have learnt the intruder's MAC for the
    # frontend's address from the intruder's ARP (ARP always passes): forget it.
    env.pods["production/backend"].exec(["ip", "neigh", "flush", "all"])


def links_change(env):
    """A veth comes and goes on the node: vaktd checks every binding again."""
    env.node_exec(["ip", "link", "add", "vkx0", "type", "veth", "peer", "name", "vkx1"])
    time.sleep(1)
    env.node_exec(["ip", "link", "del", "vkx0"])
    time.sleep(1)


def spoof_is_dropped(env, when):
    d = spoof(env)
    if d["spoofed"] < 2 or d["backend_admitted"] or d["as_frontend"]:
        raise E2EError("%s: spoofed packets not dropped as spoofed: %s" % (when, d))
    return d


def check_mode(mode):
    env = e2elib.Env("spoof", mode)
    try:
        env.seed_pods()
        objdir = env.seed_objects()
        env.start_vaktd(objdir, "node-1")
        env.wait_ready()
        wait_bound(env)
        log(mode, "every local pod address is bound to its veth")
        if not frontend_reaches_backend(env):
            raise E2EError("the frontend cannot reach the backend: the binding breaks it")
        if env.probe(env.pods["production/intruder"], [TARGET], 1.0)[TARGET][0]:
            raise E2EError("the intruder reaches the backend with its own address")

        intruder_takes_frontend_address(env)
        d = spoof_is_dropped(env, "bound")
        links_change(env)
        d = spoof_is_dropped(env, "bound, after a full pass")
        if env.metric("vakt_drops_total", {"reason": "spoofed"}) < 2:
            raise E2EError("/metrics does not count the spoofed drops")
        log(mode, "spoofing the frontend is dropped at the intruder's veth:", d)
        intruder_drops_frontend_address(env)
        if not frontend_reaches_backend(env):
            raise E2EError("the real frontend lost access")

        # The same attack without the binding: what the check prevents.
        env.stop_vaktd()
        intruder_takes_frontend_address(env)
        key = ["0"] * 10 + ["255", "255"] + FRONTEND.split(".")
        env.node_exec(["bpftool", "map", "delete", "pinned",
                       os.path.join(env.bpffs, "ep_ifindex"), "key"] + key)
        d = spoof(env)
        if d["spoofed"] or d["backend_admitted"] < 1:
            raise E2EError("without the binding the spoofed SYN should reach the backend "
                           "as the frontend's (the test proves nothing otherwise): %s" % d)
        log(mode, "without the binding the backend admits the spoofed SYN:", d)

        env.start_vaktd(objdir, "node-1")
        env.wait_ready()
        if mode == "routed":
            wait_bound(env)  # the node's route names the frontend's veth
        else:
            time.sleep(2.5)  # a bind pass or more
            if bindings(env).get(FRONTEND):
                raise E2EError("an address held by two pods and bound to neither was bound: %s"
                               % bindings(env))
            if "several pod veths" not in env.vaktd_logs(200):
                raise E2EError("the ambiguous address is not logged:\n" + env.vaktd_logs(40))
            log(mode, "held by two pods, the frontend's address stays unbound (logged)")
        intruder_drops_frontend_address(env)
        wait_bound(env)
        intruder_takes_frontend_address(env)
        spoof_is_dropped(env, "after a restart")
        intruder_drops_frontend_address(env)
        if not frontend_reaches_backend(env):
            raise E2EError("the real frontend lost access after the restart")
        log(mode, "a restarted vaktd binds again and drops the spoofed packets")
    finally:
        env.cleanup()


def main():
    for mode in ("routed", "bridged"):
        check_mode(mode)


if __name__ == "__main__":
    e2elib.main_wrapper(main)
