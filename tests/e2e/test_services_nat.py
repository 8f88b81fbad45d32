#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Services and NAT with vaktd: kube-proxy-style iptables nat rules in the
node namespace (ClusterIP DNAT to backend pods, MASQUERADE toward an
outside namespace behind the uplink vup0, given to vaktd with --uplink).

  - a pod whose egress allows only UDP and TCP 53 to the DNS pods reaches
    them through the DNS ClusterIP;
  - the same pod does not reach a backend through the backend's ClusterIP;
  - egress ipBlock rules hold under masquerade: allowed to the outside
    address on TCP 80, denied on 8080, denied for a pod without the rule;
  - ingress policy sees the client pod's address through a ClusterIP: the
    backend admits web and refuses other, both via the ClusterIP.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log, run  # noqa: E402

DNS_VIP, BACKEND_VIP = "10.96.0.10", "10.96.0.20"
OUTSIDE, NODE_UPLINK_IP = "192.168.100.2", "192.168.100.1"
PODS = {
    "kube-system/coredns": ("10.244.1.53", {"k8s-app": "kube-dns"}, [53]),
    "app/client": ("10.244.1.10", {"app": "client"}, [80]),
    "app/egress-cidr": ("10.244.1.11", {"app": "egress-cidr"}, [80]),
    "app/web": ("10.244.1.12", {"app": "web"}, [80]),
    "app/other": ("10.244.1.13", {"app": "other"}, [80]),
    "app/backend": ("10.244.1.20", {"app": "backend"}, [80]),
}

DNS_RULE = """  - to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
"""

POLICIES = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: client-dns-only
  namespace: app
spec:
  podSelector:
    matchLabels:
      app: client
  policyTypes: [Egress]
  egress:
""" + DNS_RULE + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: egress-cidr
  namespace: app
spec:
  podSelector:
    matchLabels:
      app: egress-cidr
  policyTypes: [Egress]
  egress:
""" + DNS_RULE + """  - to:
    - ipBlock:
        cidr: 192.168.100.0/24
    ports:
    - protocol: TCP
      port: 80
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: backend-from-web
  namespace: app
spec:
  podSelector:
    matchLabels:
      app: backend
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: web
    ports:
    - protocol: TCP
      port: 80
"""


def manifests():
    docs = []
    for ns in ("kube-system", "app"):
        docs.append("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n" % ns)
    for key, (ip, labels, _) in PODS.items():
        ns, name = key.split("/")
        lab = "".join("    %s: %s\n" % kv for kv in labels.items())
        docs.append("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n"
                    "  labels:\n%sspec:\n  nodeName: node-1\nstatus:\n  podIP: %s\n"
                    % (name, ns, lab, ip))
    return "---\n".join(docs) + "---\n" + POLICIES


def kube_proxy_rules(env):
    ipt = ["iptables", "-w", "-t", "nat"]
    pods = {k: v[0] for k, v in PODS.items()}
    rules = [
        ["-N", "KUBE-SERVICES"],
        ["-A", "PREROUTING", "-j", "KUBE-SERVICES"],
        ["-A", "OUTPUT", "-j", "KUBE-SERVICES"],
        ["-A", "KUBE-SERVICES", "-d", DNS_VIP + "/32", "-p", "udp", "--dport", "53", "-j",
         "DNAT", "--to-destination", pods["kube-system/coredns"] + ":53"],
        ["-A", "KUBE-SERVICES", "-d", DNS_VIP + "/32", "-p", "tcp", "--dport", "53", "-j",
         "DNAT", "--to-destination", pods["kube-system/coredns"] + ":53"],
        ["-A", "KUBE-SERVICES", "-d", BACKEND_VIP + "/32", "-p", "tcp", "--dport", "80", "-j",
         "DNAT", "--to-destination", pods["app/backend"] + ":80"],
        ["-A", "POSTROUTING", "-s", "10.244.0.0/16", "-o", "vup0", "-j", "MASQUERADE"],
    ]
    for r in rules:
        env.node_exec(ipt + r)


def check(env, src, target, expect, what):
    ok, detail = env.probe(env.pods[src], [target], 1.5)[target]
    got = "allowed" if ok else "denied"
    log("%-18s -> %-22s %-8s (expected %s) %s" % (src, "%s:%d/%s" % target, got, expect, what))
    return None if got == expect else "%s -> %s:%d/%s: %s, expected %s (%s)" % (
        src, target[0], target[1], target[2], got, expect, detail)


def main():
    if not run(["which", "iptables"], check=False, capture=True).stdout:
        raise E2EError("iptables missing (tools/install-deps.sh)")
    env = e2elib.Env("nat", "routed")
    try:
        for key, (ip, _, ports) in PODS.items():
            env.add_pod(key, ip)
        for key, (_, _, ports) in PODS.items():
            env.serve(env.pods[key], ports)
        out_ns = env.add_outside(OUTSIDE, NODE_UPLINK_IP)
        env.spawn(["ip", "netns", "exec", out_ns, sys.executable, e2elib.NETPOD, "serve",
                   "outside", "80", "8080"], "serve-outside.log")
        env.wait_servers()
        kube_proxy_rules(env)
        objdir = os.path.join(env.tmp, "objects")
        os.mkdir(objdir)
        with open(os.path.join(objdir, "cluster.yaml"), "w") as f:
            f.write(manifests())
        env.start_vaktd(objdir, "node-1", ["--uplink", "vup0"])
        env.wait_ready()
        checks = [
            ("app/client", (DNS_VIP, 53, "udp"), "allowed", "DNS via ClusterIP, UDP"),
            ("app/client", (DNS_VIP, 53, "tcp"), "allowed", "DNS via ClusterIP, TCP"),
            ("app/client", (BACKEND_VIP, 80, "tcp"), "denied", "backend via ClusterIP"),
            ("app/client", ("10.244.1.20", 80, "tcp"), "denied", "backend directly"),
            ("app/egress-cidr", (OUTSIDE, 80, "tcp"), "allowed", "ipBlock under masquerade"),
            ("app/egress-cidr", (OUTSIDE, 8080, "tcp"), "denied", "port not in the rule"),
            ("app/egress-cidr", (DNS_VIP, 53, "udp"), "allowed", "DNS via ClusterIP"),
            ("app/client", (OUTSIDE, 80, "tcp"), "denied", "no ipBlock rule"),
            ("app/web", (BACKEND_VIP, 80, "tcp"), "allowed", "ingress sees web's address"),
            ("app/other", (BACKEND_VIP, 80, "tcp"), "denied", "ingress sees other's address"),
            ("app/other", (OUTSIDE, 8080, "tcp"), "allowed", "not isolated for egress"),
        ]
        wrong = [w for w in (check(env, *c) for c in checks) if w]
        masq = env.node_exec(["iptables", "-w", "-t", "nat", "-L", "POSTROUTING", "-v", "-n",
                              "-x"], capture=True).stdout
        pkts = [int(line.split()[0]) for line in masq.splitlines() if "MASQUERADE" in line]
        if not pkts or pkts[0] == 0:
            wrong.append("MASQUERADE rule never matched: the outside checks proved nothing")
        if wrong:
            raise E2EError("Services/NAT:\n  " + "\n  ".join(wrong) + "\n--- vaktd log ---\n" +
                           env.vaktd_logs(30))
    finally:
        env.cleanup()


if __name__ == "__main__":
    e2elib.main_wrapper(main)
