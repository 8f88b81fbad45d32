#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers of bench/bench_kube.sh: a generated cluster for the test API
server, and the API event -> pinned map latency measurement.

  bench_kube.py gen OUT.json --pods N --policies N --namespaces N --nodes N --node NAME
      writes {"items": [...]} (the server's --objects format) and prints the
      local pods ("ns/name ip" per line) on stderr-free stdout
  bench_kube.py events INFO.json BPFFS NS/NAME,IP [--count N]
      runs COUNT API changes against the server (INFO.json: the server's
      startup line), each timed from just before the request is sent until
      the pinned map shows it; prints the percentiles:
        pod create / delete (a peer on another node) -> its ipcache entry
        policy create / delete selecting a local pod -> that pod's endpoint
        record (its ingress policy id)

The cluster's shape: NAMESPACES namespaces (labels team, env), PODS pods
spread evenly, apps of 5 replicas with a pod-template-hash, named container
ports; per namespace POLICIES/NAMESPACES policies: default deny, app to app
on a port, from a monitoring namespace by namespaceSelector, DNS egress to
kube-system, an ipBlock with an except. Standard library only; the map is
read with the bpf(2) syscall through ctypes.
"""
import argparse
import ctypes
import http.client
import json
import os
import ssl
import struct
import sys
import time

APPS_PER_NS = 15


def ip_of(k):
    a = (10 << 24) + (64 << 16) + k + 1  # 10.64.0.1 and up
    return "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)


def gen(a):
    items = []
    nns = a.namespaces
    for i in range(nns):
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "ns-%04d" % i, "labels": {"team": "team-%02d" % (i % 50),
                                             "env": ("prod", "staging", "dev")[i % 3]}}})
    items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "kube-system", "labels": {}}})
    local = []
    for k in range(a.pods):
        ns = "ns-%04d" % (k % nns)
        j = k // nns  # index of the pod within its namespace
        app = j % APPS_PER_NS
        node = "node-%04d" % (k % a.nodes) if k % a.nodes else a.node
        name = "app-%02d-%x-%d" % (app, 0xabc000 + app, j)
        labels = {"app": "app-%02d" % app, "pod-template-hash": "%x" % (0xabc000 + app),
                  "tier": ("web", "api", "db")[app % 3]}
        ip = ip_of(k)
        items.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "app",
                                                        "ports": [{"name": "http",
                                                                   "containerPort": 8080},
                                                                  {"name": "metrics",
                                                                   "containerPort": 9090}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
        if node == a.node:
            local.append("%s/%s %s" % (ns, name, ip))
    per_ns = max(1, a.policies // nns)
    made = 0
    for i in range(nns):
        ns = "ns-%04d" % i
        for p in range(per_ns):
            if made == a.policies:
                break
            items.append(policy(ns, p, i))
            made += 1
    with open(a.out, "w") as f:
        json.dump({"items": items}, f)
    print("\n".join(local))


def policy(ns, p, i):
    md = {"name": "np-%d" % p, "namespace": ns}
    kind = p % 5
    if kind == 0:
        spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
    elif kind == 1:
        src = "app-%02d" % ((p + 1) % APPS_PER_NS)
        spec = {"podSelector": {"matchLabels": {"app": "app-%02d" % (p % APPS_PER_NS)}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": src}}}],
                             "ports": [{"protocol": "TCP", "port": "http"}]}]}
    elif kind == 2:
        spec = {"podSelector": {"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web", "api"]}]},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                    "team": "team-%02d" % ((i + 1) % 50)}}}],
                    "ports": [{"protocol": "TCP", "port": 9090}]}]}
    elif kind == 3:
        spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "kube-system"}}}],
             "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            {"to": [{"podSelector": {}}]}]}
    else:
        spec = {"podSelector": {"matchLabels": {"tier": "web"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "172.16.%d.0/24" % (i % 256),
                                                   "except": ["172.16.%d.128/25" % (i % 256)]}}],
                             "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": md,
            "spec": spec}


# --- bpf(2) -------------------------------------------------------------------------

NR_BPF = 321  # x86_64
BPF_MAP_LOOKUP_ELEM, BPF_OBJ_GET = 1, 7
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(NR_BPF, cmd, buf, 128)
    return r, ctypes.get_errno()


def obj_get(path):
    p = ctypes.create_string_buffer(path.encode())
    attr = struct.pack("=QII", ctypes.addressof(p), 0, 0)
    fd, err = bpf(BPF_OBJ_GET, attr)
    if fd < 0:
        sys.exit("bpf obj_get %s: errno %d" % (path, err))
    return fd


class Map:
    def __init__(self, path, vsize):
        self.fd = obj_get(path)
        self.val = ctypes.create_string_buffer(vsize)

    def lookup(self, key):
        k = ctypes.create_string_buffer(key, len(key))
        attr = struct.pack("=I4xQQQ", self.fd, ctypes.addressof(k),
                           ctypes.addressof(self.val), 0)
        r, _ = bpf(BPF_MAP_LOOKUP_ELEM, attr)
        return None if r < 0 else self.val.raw


def addr_key(ip):
    return b"\0" * 10 + b"\xff\xff" + bytes(int(x) for x in ip.split("."))


# --- the measurement ----------------------------------------------------------------

class Api:
    def __init__(self, info):
        self.info = info
        ctx = ssl.create_default_context(cafile=info["ca"])
        self.c = http.client.HTTPSConnection("127.0.0.1", info["port"], context=ctx)

    def req(self, method, path, body=None):
        with open(self.info["token_file"]) as f:
            token = f.read().strip()
        self.c.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers={"Authorization": "Bearer " + token,
                                "Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            sys.exit("%s %s: %d %s" % (method, path, r.status, data[:200]))


def wait_for(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            sys.exit("map never showed: " + what)


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def events(a):
    with open(a.info) as f:
        info = json.load(f)
    api = Api(info)
    ipcache = Map(os.path.join(a.bpffs, "ipcache"), 8)
    endpoints = Map(os.path.join(a.bpffs, "endpoints"), 24)
    nsname, local_ip = a.local.split(",")
    local_ns, local_name = nsname.split("/")
    ep_key = addr_key(local_ip)
    lat = {"pod create": [], "pod delete": [], "policy create": [], "policy delete": []}
    n = a.count // 4
    for i in range(n):
        ip = "10.200.%d.%d" % (i // 250, i % 250 + 1)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "bench-%d" % i, "namespace": "ns-0001",
            "labels": {"app": "bench", "run": str(i)}},
            "spec": {"nodeName": "node-0003", "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}
        key = addr_key(ip)
        t0 = time.monotonic()
        api.req("POST", "/api/v1/namespaces/ns-0001/pods", pod)
        wait_for(lambda: ipcache.lookup(key) is not None, "pod %s" % ip)
        lat["pod create"].append(time.monotonic() - t0)
        t0 = time.monotonic()
        api.req("DELETE", "/api/v1/namespaces/ns-0001/pods/bench-%d" % i)
        wait_for(lambda: ipcache.lookup(key) is None, "pod %s gone" % ip)
        lat["pod delete"].append(time.monotonic() - t0)
    for i in range(n):
        before = endpoints.lookup(ep_key)
        if before is None:
            sys.exit("local pod %s has no endpoint record" % local_ip)
        pol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {
            "name": "bench-%d" % i, "namespace": local_ns},
            "spec": {"podSelector": {"matchLabels": {"app": local_name.split("-")[0] + "-" +
                                                     local_name.split("-")[1]}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {
                         "app": "app-%02d" % (i % APPS_PER_NS)}}}],
                         "ports": [{"protocol": "TCP", "port": 20000 + i}]}]}}
        path = "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies" % local_ns
        t0 = time.monotonic()
        api.req("POST", path, pol)
        wait_for(lambda: endpoints.lookup(ep_key) != before, "policy bench-%d" % i)
        lat["policy create"].append(time.monotonic() - t0)
        during = endpoints.lookup(ep_key)
        t0 = time.monotonic()
        api.req("DELETE", path + "/bench-%d" % i)
        # Not "== before": the endpoint policy id of the old set may have been reused.
        wait_for(lambda: endpoints.lookup(ep_key) != during, "policy bench-%d gone" % i)
        lat["policy delete"].append(time.monotonic() - t0)
    every = [x for v in lat.values() for x in v]
    for name, v in list(lat.items()) + [("all", every)]:
        print("  %-14s n=%4d  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms" % (
            name, len(v), pct(v, 50) * 1e3, pct(v, 99) * 1e3, max(v) * 1e3))
    print("all_p99_ms %.1f" % (pct(every, 99) * 1e3))
    return pct(every, 99)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--pods", type=int, default=150000)
    g.add_argument("--policies", type=int, default=10000)
    g.add_argument("--namespaces", type=int, default=2000)
    g.add_argument("--nodes", type=int, default=5000)
    g.add_argument("--node", default="bench-node")
    e = sub.add_parser("events")
    e.add_argument("info")
    e.add_argument("bpffs")
    e.add_argument("local", help="ns/name,ip of a local pod")
    e.add_argument("--count", type=int, default=400)
    a = ap.parse_args()
    if a.cmd == "gen":
        gen(a)
    else:
        events(a)


if __name__ == "__main__":
    main()
